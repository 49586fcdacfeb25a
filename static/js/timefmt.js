// Times as people read them, the same as medvision/timefmt.py: m:ss (h:mm:ss past an hour).

// A duration in seconds, rounded half up (a withdrawal of 372.4 s is 6:12).
export function formatDuration(seconds) {
  const total = Math.floor(seconds + 0.5);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// A media time in ms, the second it falls in, as the player's clock shows it (7.9 s is 0:07).
export function mediaClock(ms) {
  return formatDuration(Math.floor(ms / 1000));
}
