"""Media: VideoAsset (models), every ffmpeg call behind lms.media.ffmpeg_tools, the asset lifecycle in
services, serving and the lesson video pages in routes. Only routes may import lms.courses or lms.jobs."""
