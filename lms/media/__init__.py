"""Media: every ffmpeg call lives behind lms.media.ffmpeg_tools; serving lives in routes."""
