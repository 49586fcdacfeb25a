"""The analysis app's Celery task names, in a module that imports nothing, so that the
queueing side (analysis.dispatch) and the worker's start hook can name tasks without
importing the tasks or the Celery app (no import circle)."""

ANALYZE_FRAMES = "analysis.tasks.analyze_frames"
ANALYZE_LIVE = "analysis.tasks.analyze_live"
# The GPU scheduling loop (analysis.scheduler): what a resumed loop and a starting worker queue.
SCHEDULE = "analysis.tasks.analyze_waiting"
PROCESS_VIDEO = "analysis.tasks.process_video"
SUMMARISE_VIDEO = "analysis.tasks.summarise_video"
FINISH_UPLOAD = "analysis.tasks.finish_upload"
# CPU queue: the browser-playable H.264 copy of a recording (analysis.playback).
MAKE_PLAYBACK_COPY = "analysis.tasks.make_playback_copy"
