#!/usr/bin/env python3
"""Video pipeline benchmark: lms.media.ffmpeg_tools.transcode against the equivalent single
ffmpeg command line, on the same 5-minute 1080p source, in the same run.

Prints wall times, their ratio (target ≤ 1.10), and size/bitrate of each rendition
(target: the 360p of a 5-minute lesson ≤ 17 MB).

    .venv/bin/python scripts/bench/transcode.py [--seconds 300] [--rounds 1]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ffmpeg  # noqa: E402

from lms.media import ffmpeg_tools  # noqa: E402


def make_source(path: Path, seconds: int) -> None:
    print(f"生成 {seconds} 秒 1080p 测试源……", flush=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset",
                    "ultrafast", "-crf", "18", "-c:a", "aac", "-shortest", str(path)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "source.mp4"
        make_source(source, args.seconds)
        info = ffmpeg_tools.probe(source)
        # The baseline: the same graph as one plain command line (what an operator would type).
        targets = {name: str(tmp / f"cli-{name}.mp4") for name in ffmpeg_tools.plan_renditions(info)}
        command = ffmpeg.compile(ffmpeg_tools.transcode_spec(str(source), info, targets), overwrite_output=True)
        command = [command[0], "-v", "error"] + command[1:]
        print("基线命令：", " ".join(command), flush=True)
        pipeline_times, cli_times = [], []
        for round_no in range(args.rounds):
            start = time.perf_counter()
            subprocess.run(command, check=True)
            cli_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            produced = ffmpeg_tools.transcode(source, tmp / "pipeline", info=info, on_progress=lambda p: None)
            pipeline_times.append(time.perf_counter() - start)
            print(f"第 {round_no + 1} 轮：命令行 {cli_times[-1]:.1f} s，流水线 {pipeline_times[-1]:.1f} s", flush=True)
        cli, pipe = min(cli_times), min(pipeline_times)
        print(f"\n墙钟时间：命令行 {cli:.1f} s，流水线 {pipe:.1f} s，比值 {pipe / cli:.3f}（目标 ≤ 1.10）")
        print(f"源：{info.width}x{info.height}，{info.duration:.0f} s")
        for name, file in produced.items():
            path = tmp / "pipeline" / file
            out = ffmpeg_tools.probe(path)
            size = path.stat().st_size
            print(f"{name}: {out.width}x{out.height}，{size / 1e6:.1f} MB，平均 {size * 8 / out.duration / 1000:.0f} kb/s"
                  f"（{out.duration:.0f} s）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
