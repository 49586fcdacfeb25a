// Upload a recording resumably (tus 1.0, tus-js-client vendored under /static/vendor/).
//
// The file goes in chunks of data-chunk-bytes; a dropped connection is retried with back-off
// and continues from the server's offset, Pause/Resume stop and continue by hand, and after
// a page reload choosing the same file again continues where it stopped (tus-js-client keeps
// the upload's address in localStorage, keyed by this session, the file's name, size and
// date). When the last byte is in, the server checks the recording in the background; this
// polls the upload until it became a recording (then reloads) or was refused (the reason is
// shown). Server messages are shown as text, never as markup.

const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];

function megabytes(bytes) {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GB` : `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

function serverMessage(error) {
  const response = error && error.originalResponse;
  if (response) {
    try {
      const body = JSON.parse(response.getBody());
      if (body.error && body.error.message) return body.error.message;
    } catch { /* not JSON */ }
    return `The upload was refused (HTTP ${response.getStatus()}).`;
  }
  return "The connection to the server was lost; the upload will continue when it is back (or press Resume).";
}

export function wireUpload(form) {
  if (!form) return;
  const tus = window.tus;
  const bar = document.getElementById("upload-progress");
  const message = document.getElementById("upload-message");
  const pause = document.getElementById("upload-pause");
  const resume = document.getElementById("upload-resume");
  const input = form.querySelector('input[type="file"]');
  const maxBytes = Number(form.dataset.maxBytes);
  const chunkSize = Number(form.dataset.chunkBytes) || 8 * 1024 ** 2;
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const say = (text) => { message.textContent = text; };
  let upload = null;

  if (!tus || !tus.isSupported) {
    say("This browser cannot upload resumably; use a current Chrome, Edge, Firefox or Safari.");
    return;
  }
  const fingerprint = async (file) =>
    ["medvision", form.dataset.tusUrl, file.name, file.size, file.lastModified].join("|");

  // An upload this browser started for this session and did not finish (page closed, reloaded).
  tus.defaultOptions.urlStorage.findAllUploads().then((all) => {
    // Stored as "tus::<fingerprint>::<random>"; our fingerprints start with this session's address.
    const mine = all.filter((u) => String(u.urlStorageKey || "").startsWith(`tus::medvision|${form.dataset.tusUrl}|`));
    if (mine.length) {
      const name = (mine[0].metadata && mine[0].metadata.filename) || "a recording";
      say(`An unfinished upload of ${name} was found: choose the same file and press Upload to continue where it stopped.`);
    }
  }).catch(() => {});

  const showButtons = (running) => {
    if (pause) pause.hidden = !running;
    if (resume) resume.hidden = running || !upload;
  };

  async function waitUntilChecked(url) {
    say("Uploaded. Checking the recording…");
    for (let attempt = 0; attempt < 600; attempt += 1) {
      const response = await fetch(url, { headers: { "Tus-Resumable": "1.0.0", Accept: "application/json" } });
      if (response.ok) {
        const status = await response.json();
        if (status.state === "done") {
          say(`Recording ${status.recording} is being analysed…`);
          setTimeout(() => location.reload(), 500);
          return;
        }
        if (status.state === "refused") {
          bar.hidden = true;
          say(status.error_message || "The recording was refused.");
          return;
        }
      } else if (response.status !== 429) {
        say(`The upload arrived, but its check could not be followed (HTTP ${response.status}); reload the page.`);
        return;
      }
      await new Promise((done) => setTimeout(done, 1000));
    }
    say("The recording is still being checked; reload the page in a minute.");
  }

  function start(file) {
    upload = new tus.Upload(file, {
      endpoint: form.dataset.tusUrl,
      chunkSize,
      retryDelays: RETRY_DELAYS_MS,
      headers: { "X-CSRFToken": csrf },
      metadata: { filename: file.name, filetype: file.type || "" },
      fingerprint,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress(sent, total) {
        bar.hidden = false;
        bar.value = (100 * sent) / total;
        say(`Uploading ${file.name}: ${megabytes(sent)} of ${megabytes(total)} (${Math.floor((100 * sent) / total)}%)`);
      },
      onShouldRetry(error, attempt, options) {
        const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (status === 0) say(`Connection lost at ${bar.value.toFixed(0)}%; trying again (attempt ${attempt + 1})…`);
        return status === 0 || status === 409 || status === 423 || status === 429 || status >= 500;
      },
      onError(error) {
        showButtons(false);
        say(serverMessage(error));
      },
      onSuccess() {
        showButtons(false);
        if (resume) resume.hidden = true;
        waitUntilChecked(upload.url);
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
      showButtons(true);
    });
  }

  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const file = input.files[0];
    if (!file) return;
    if (maxBytes && file.size > maxBytes) {
      say(`This file is ${megabytes(file.size)}; the limit is ${megabytes(maxBytes)}.`);
      return;
    }
    if (upload) upload.abort();
    say(`Starting the upload of ${file.name}…`);
    start(file);
  });
  if (pause) pause.addEventListener("click", () => {
    if (!upload) return;
    upload.abort();
    showButtons(false);
    say(`Paused at ${bar.value.toFixed(0)}%. Press Resume to continue.`);
  });
  if (resume) resume.addEventListener("click", () => {
    if (!upload) return;
    upload.start();
    showButtons(true);
  });
}
