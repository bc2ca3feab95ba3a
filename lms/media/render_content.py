"""Render the demo content's lesson videos from their slide scripts (scripts/render-videos)."""
import argparse
import sys
from pathlib import Path

import yaml
from tqdm import tqdm

from lms.media.slides import render_lesson_video


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Render lesson videos (video.mp4, captions.vtt) from slides.yaml")
    parser.add_argument("root", nargs="?", default="content", type=Path)
    parser.add_argument("--force", action="store_true", help="re-render videos that already exist")
    args = parser.parse_args(argv)
    scripts = sorted(args.root.glob("*/*/slides.yaml"))
    todo = [s for s in scripts if args.force or not (s.parent / "video.mp4").exists()]
    for script in tqdm(todo, desc="渲染视频", unit="节", file=sys.stderr):
        slides = yaml.safe_load(script.read_text(encoding="utf-8"))["slides"]
        render_lesson_video(slides, script.parent / "video.mp4", script.parent / "captions.vtt")
    print(f"{len(todo)} 个视频已渲染，{len(scripts) - len(todo)} 个已存在")
    return 0


if __name__ == "__main__":
    sys.exit(main())
