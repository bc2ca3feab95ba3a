"""Render the lesson videos of content packages from their slide scripts ahead of import
(scripts/render-videos). Renders go to the cache under LMS_DATA_DIR that `lms import-content`
uses, never into the packages."""
import argparse
import sys
from pathlib import Path

from tqdm import tqdm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Render lesson videos and captions from slides.yaml into LMS_DATA_DIR/rendered")
    parser.add_argument("root", nargs="?", default="content", type=Path, help="a package, or a folder of packages")
    parser.add_argument("--force", action="store_true", help="re-render videos that are already rendered")
    args = parser.parse_args(argv)

    from lms import create_app
    from lms.courses.importer import ContentError, load_package, package_folders, slides_to_render
    from lms.media.slides import render_cache_root, rendered_lesson, rendered_paths

    with create_app().app_context():
        cache, scripts, failures = render_cache_root(), [], 0
        for folder in package_folders(args.root):
            try:
                spec = load_package(folder)
            except ContentError as exc:
                failures += 1
                print(f"错误 {exc}", file=sys.stderr)
                continue
            scripts += [(slides_to_render(lesson), lesson.narration) for lesson in spec.lessons
                        if lesson.slides and lesson.video is None]
        todo = [(s, voice) for s, voice in scripts
                if args.force or not all(p.is_file() for p in rendered_paths(s, cache, voice))]
        for slides, voice in tqdm(todo, desc="渲染视频", unit="节", file=sys.stderr):
            rendered_lesson(slides, cache, voice, force=args.force)
        print(f"{len(todo)} 个视频已渲染，{len(scripts) - len(todo)} 个已存在（{cache}）")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
