"""Can an offline voice from Debian narrate the demo slides? (issue 13)

Runs Debian's espeak-ng (the one offline Chinese voice a Debian or PyPI package ships with its data) on
every caption under content/ and counts, per distinct Chinese character, whether the Mandarin voice
(`cmn`) pronounces it as a Mandarin syllable or falls back to spelling it out in English — espeak-ng's
phoneme output marks such a switch with "(en)". Prints the share of caption characters read each way.

Usage: .venv/bin/python scripts/eval/narration.py   (needs `apt-get install espeak-ng`)
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lms.courses.importer import load_package, package_folders  # noqa: E402

HAN = re.compile(r"[\u4e00-\u9fff]")


def phonemes(text: str) -> str:
    return subprocess.run(["espeak-ng", "-v", "cmn", "-q", "-x", text], capture_output=True, text=True,
                          check=True).stdout


def main() -> int:
    if not shutil.which("espeak-ng"):
        print("espeak-ng is not installed: apt-get install espeak-ng")
        return 1
    counts = Counter()
    for folder in package_folders(ROOT / "content"):
        for lesson in load_package(folder).lessons:
            for slide in lesson.slides or []:
                counts.update(HAN.findall(slide.get("caption", "")))
    english = {ch for ch in counts if "(en)" in phonemes(ch)}
    total = sum(counts.values())
    spelled = sum(n for ch, n in counts.items() if ch in english)
    print(f"caption characters: {total} ({len(counts)} distinct)")
    print(f"read as Mandarin: {total - spelled} ({(total - spelled) / total:.1%})")
    print(f"spelled out in English (e.g. 银 → 'yin two'): {spelled} ({spelled / total:.1%}; "
          f"{len(english)} of {len(counts)} distinct characters)")
    sample = sorted(ch for ch in counts if ch not in english)[:20]
    print("characters the Mandarin voice knows (first 20):", "".join(sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
