"""The practice file of a package (docs/content-format.md, “练一练”): checked on import, stored as the
normalised document, written back as it by `lms export-content`.

    title: 调大字体
    device: phone
    steps:
      - screen: home                 # a named screen (lms/practices/screens.py LIBRARY) or an inline one
        instruction: 点“设置”
        targets: [settings]          # or target: settings
        right: 对了！                 # optional
        wrong: 没关系，再找找“设置”。  # optional

Every problem names the file and the field (the importer's ContentError, through `doc.error`).
"""
from __future__ import annotations

import hashlib
import json

from lms.practices.screens import LIBRARY, ScreenProblem, check_screen, library_screen, tappable_ids

DEVICES = ("phone",)
STEP_FIELDS = {"screen", "instruction", "target", "targets", "right", "wrong"}
MAX_STEPS = 40


def load_practice(doc) -> dict:
    """`doc`: the importer's parsed YAML file (data, error(message, *keys)). Returns the normalised
    document; raises doc.error(...) naming the field."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("练一练文件应是一个键值映射（title、steps）")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise doc.error("缺少必填字段：练一练的标题", "title")
    device = data.get("device", "phone")
    if device not in DEVICES:
        raise doc.error(f"未知的设备“{device}”，可选：{', '.join(DEVICES)}", "device")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise doc.error("练一练至少需要一步（steps 列表）", "steps")
    if len(steps) > MAX_STEPS:
        raise doc.error(f"练一练最多 {MAX_STEPS} 步，请拆成几个练习", "steps")
    return {"title": title.strip(), "device": device, "steps": [_step(doc, raw, n) for n, raw in enumerate(steps)]}


def _step(doc, raw, n: int) -> dict:
    at = ("steps", n)
    if not isinstance(raw, dict):
        raise doc.error("每一步应是一个键值映射（screen、instruction、targets）", *at)
    unknown = sorted(set(raw) - STEP_FIELDS)
    if unknown:
        raise doc.error(f"不认识的字段：{', '.join(unknown)}（可写 {', '.join(sorted(STEP_FIELDS))}）", *at, unknown[0])
    if raw.get("screen") in (None, ""):
        raise doc.error("缺少必填字段：这一步显示哪个画面", *at, "screen")
    screen_ref = raw["screen"]
    if isinstance(screen_ref, str):
        if screen_ref not in LIBRARY:
            raise doc.error(f"未知的画面“{screen_ref}”，可选：{', '.join(LIBRARY)}，或直接写出画面（title、elements）",
                            *at, "screen")
        screen = library_screen(screen_ref)
    else:
        try:
            screen = screen_ref = check_screen(screen_ref)
        except ScreenProblem as problem:
            raise doc.error(problem.message, *at, "screen", *problem.path) from None
    instruction = raw.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise doc.error("缺少必填字段：这一步要对学员说的话（不能为空）", *at, "instruction")
    if "target" in raw and "targets" in raw:
        raise doc.error("target 和 targets 只写一个", *at, "targets")
    key = "targets" if "targets" in raw else "target"
    targets = raw.get(key)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise doc.error("缺少必填字段：点哪里算对（画面上元素的 id）", *at, key)
    on_screen = tappable_ids(screen)
    for m, target in enumerate(targets):
        if target not in on_screen:
            raise doc.error(f"“{target}”不在这一步的画面上；画面上能点的有：{', '.join(on_screen)}", *at, key, m)
    step = {"screen": screen_ref, "instruction": instruction.strip(), "targets": list(dict.fromkeys(targets))}
    for word in ("right", "wrong"):
        if raw.get(word) is not None:
            if not isinstance(raw[word], str) or not raw[word].strip():
                raise doc.error("应是一段不为空的文字", *at, word)
            step[word] = raw[word].strip()
    return step


def resolved_screen(step: dict) -> dict:
    """The screen a stored step is drawn on (a named one looked up in the library)."""
    screen = step["screen"]
    return library_screen(screen) if isinstance(screen, str) else screen


def digest(document: dict) -> str:
    """Identifies what the steps are: a learner part-way through other steps starts again."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
