"""The phone screens a practice is drawn on: a generic phone drawn by the project (no other company's
screenshots, names or logos).

A screen is plain data — an optional top bar (`title`, a `back` arrow, an `action` at the top right)
and a list of `elements` of a few kinds — so the same checks serve the named screens below and the
screens a package author writes inline in a practice file. Every tappable element has an `id`; a
step's targets must be ids on its screen (lms/practices/format.py). Drawn by
lms/templates/practices/_phone.html.
"""
from __future__ import annotations

import re

# Glyphs drawn as small SVGs in lms/templates/practices/_glyphs.html
GLYPHS = ("settings", "phone", "sms", "chat", "camera", "photos", "wallet", "hospital", "car", "display",
          "sound", "wifi", "bell", "person", "group", "scan", "qr", "video", "mic", "location", "shield",
          "trash", "calendar", "doctor", "search")

# kind -> (fields it must have, fields it may have). Tappable kinds draw a button with the element's id.
ELEMENT_KINDS = {
    "icons": ({"items"}, set()),                           # the app grid: items of {id, label, glyph}
    "row": ({"label"}, {"id", "detail", "glyph"}),          # a list row; tappable when it has an id
    "button": ({"id", "label"}, {"style"}),                 # style: primary | danger | plain
    "text": ({"text"}, {"size"}),                           # size: big | normal
    "field": ({"label", "value"}, set()),                   # a label and its value (payee, time …)
    "amount": ({"value"}, {"label"}),                       # a large sum of money
    "bubble": ({"text"}, {"who", "id"}),                    # a chat or SMS message: who = them | me
    "keypad": ({"id"}, set()),                              # digits 0–9: ids <id>-0 … <id>-9
    "picture": ({"glyph", "label"}, {"id"}),                # a big picture (QR code, map, camera view)
}
BUTTON_STYLES = ("primary", "danger", "plain")
TEXT_SIZES = ("big", "normal")
WHO = ("them", "me")
ELEMENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TOP_FIELDS = {"title", "back", "action", "elements"}


def tappable_ids(screen: dict) -> list[str]:
    """Every id on `screen` that a learner can tap, in the order they are drawn."""
    ids = []
    if screen.get("back"):
        ids.append("back")
    if screen.get("action"):
        ids.append(screen["action"]["id"])
    for element in screen.get("elements", []):
        kind = element["kind"]
        if kind == "icons":
            ids += [item["id"] for item in element["items"]]
        elif kind == "keypad":
            ids += [f"{element['id']}-{digit}" for digit in range(10)]
        elif element.get("id"):
            ids.append(element["id"])
    return ids


class ScreenProblem(ValueError):
    """What is wrong with a screen definition: `path` the field (a tuple of keys), `message` in Chinese."""

    def __init__(self, message: str, *path):
        super().__init__(message)
        self.message, self.path = message, path


def check_screen(raw) -> dict:
    """A screen definition checked and normalised (only known fields, ids unique); ScreenProblem otherwise."""
    if not isinstance(raw, dict):
        raise ScreenProblem("画面应是一个画面名称，或一个键值映射（title、elements）")
    unknown = sorted(set(raw) - TOP_FIELDS)
    if unknown:
        raise ScreenProblem(f"画面不认识的字段：{', '.join(unknown)}（可写 {', '.join(sorted(TOP_FIELDS))}）", unknown[0])
    screen = {}
    if raw.get("title") is not None:
        screen["title"] = _text(raw["title"], "title")
    if raw.get("back") is not None:
        if not isinstance(raw["back"], bool):
            raise ScreenProblem("back 必须是 true 或 false（左上角的返回箭头，点它的 id 是 back）", "back")
        if raw["back"]:
            screen["back"] = True
    if raw.get("action") is not None:
        action = raw["action"]
        if not isinstance(action, dict):
            raise ScreenProblem("action 应是一个键值映射（id、label）", "action")
        screen["action"] = {"id": _id(action.get("id"), "action", "id"), "label": _text(action.get("label"), "action", "label")}
    elements = raw.get("elements")
    if not isinstance(elements, list) or not elements:
        raise ScreenProblem("画面至少需要一个元素", "elements")
    screen["elements"] = [_element(item, n) for n, item in enumerate(elements)]
    ids = tappable_ids(screen)
    seen = set()
    for element_id in ids:
        if element_id in seen:
            raise ScreenProblem(f"画面上的 id “{element_id}”重复", "elements")
        seen.add(element_id)
    return screen


def _element(raw, n: int) -> dict:
    at = ("elements", n)
    if not isinstance(raw, dict):
        raise ScreenProblem("每个元素应是一个键值映射（kind 等）", *at)
    kind = raw.get("kind")
    if kind not in ELEMENT_KINDS:
        raise ScreenProblem(f"未知的元素类型“{kind}”，可选：{', '.join(ELEMENT_KINDS)}", *at, "kind")
    required, optional = ELEMENT_KINDS[kind]
    unknown = sorted(set(raw) - required - optional - {"kind"})
    if unknown:
        raise ScreenProblem(f"{kind} 不认识的字段：{', '.join(unknown)}", *at, unknown[0])
    element = {"kind": kind}
    for key in sorted(required | optional):
        if key not in raw or raw[key] is None:
            if key in required:
                raise ScreenProblem("缺少必填字段", *at, key)
            continue
        value = raw[key]
        if key == "id":
            element[key] = _id(value, *at, key)
        elif key == "items":
            element[key] = _items(value, at)
        elif key == "glyph":
            element[key] = _glyph(value, *at, key)
        elif key == "style":
            element[key] = _choice(value, BUTTON_STYLES, *at, key)
        elif key == "size":
            element[key] = _choice(value, TEXT_SIZES, *at, key)
        elif key == "who":
            element[key] = _choice(value, WHO, *at, key)
        else:
            element[key] = _text(value, *at, key)
    return element


def _items(value, at) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ScreenProblem("items 应是至少一个图标的列表（id、label、glyph）", *at, "items")
    items = []
    for m, item in enumerate(value):
        where = (*at, "items", m)
        if not isinstance(item, dict):
            raise ScreenProblem("每个图标应是一个键值映射（id、label、glyph）", *where)
        items.append({"id": _id(item.get("id"), *where, "id"), "label": _text(item.get("label"), *where, "label"),
                      "glyph": _glyph(item.get("glyph"), *where, "glyph")})
    return items


def _text(value, *path) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise ScreenProblem("应是一段不为空的文字", *path)
    return str(value).strip()


def _id(value, *path) -> str:
    if not isinstance(value, str) or not ELEMENT_ID.match(value):
        raise ScreenProblem("id 应是小写字母、数字和连字符（如 settings、pay-confirm）", *path)
    return value


def _glyph(value, *path) -> str:
    if value not in GLYPHS:
        raise ScreenProblem(f"未知的图标“{value}”，可选：{', '.join(GLYPHS)}", *path)
    return value


def _choice(value, allowed, *path) -> str:
    if value not in allowed:
        raise ScreenProblem(f"应是 {' / '.join(allowed)} 之一", *path)
    return value


# The named screens a practice may use by name (`screen: home`). Inline screens cover anything else.
_HOME_APPS = [
    {"id": "phone", "label": "电话", "glyph": "phone"},
    {"id": "sms", "label": "信息", "glyph": "sms"},
    {"id": "chat", "label": "聊天", "glyph": "chat"},
    {"id": "camera", "label": "相机", "glyph": "camera"},
    {"id": "photos", "label": "相册", "glyph": "photos"},
    {"id": "settings", "label": "设置", "glyph": "settings"},
    {"id": "wallet", "label": "钱包", "glyph": "wallet"},
    {"id": "hospital", "label": "挂号", "glyph": "hospital"},
    {"id": "taxi", "label": "打车", "glyph": "car"},
]

LIBRARY = {
    "home": {"elements": [{"kind": "icons", "items": _HOME_APPS}]},
    "settings": {"title": "设置", "back": True, "elements": [
        {"kind": "row", "id": "wifi", "label": "无线网络", "glyph": "wifi"},
        {"kind": "row", "id": "sound", "label": "声音", "glyph": "sound"},
        {"kind": "row", "id": "display", "label": "显示和字体", "glyph": "display"},
        {"kind": "row", "id": "notifications", "label": "通知", "glyph": "bell"},
    ]},
    "display": {"title": "显示和字体", "back": True, "elements": [
        {"kind": "row", "id": "brightness", "label": "亮度", "detail": "自动"},
        {"kind": "row", "id": "font-size", "label": "字体大小", "detail": "标准"},
        {"kind": "row", "id": "dark-mode", "label": "深色模式", "detail": "关"},
    ]},
    "font-size": {"title": "字体大小", "back": True, "elements": [
        {"kind": "text", "text": "字大一点，看得更清楚", "size": "big"},
        {"kind": "button", "id": "font-standard", "label": "标准", "style": "plain"},
        {"kind": "button", "id": "font-large", "label": "大", "style": "plain"},
        {"kind": "button", "id": "font-xlarge", "label": "特大", "style": "plain"},
    ]},
    "chat-list": {"title": "聊天", "action": {"id": "plus", "label": "＋"}, "elements": [
        {"kind": "row", "id": "daughter", "label": "女儿小芳", "detail": "妈，周末回来看您", "glyph": "person"},
        {"kind": "row", "id": "classmates", "label": "老同学群", "detail": "明天公园见", "glyph": "group"},
        {"kind": "row", "id": "community", "label": "社区通知", "detail": "周三义诊", "glyph": "bell"},
    ]},
    "sms-list": {"title": "信息", "elements": [
        {"kind": "row", "id": "sms-daughter", "label": "女儿小芳", "detail": "晚上回家吃饭", "glyph": "person"},
        {"kind": "row", "id": "sms-scam", "label": "106xxxx（陌生号码）", "detail": "【社保中心】您的社保卡已冻结…", "glyph": "sms"},
        {"kind": "row", "id": "sms-12381", "label": "12381", "detail": "【反诈提醒】您可能正在…", "glyph": "shield"},
    ]},
    "wallet": {"title": "钱包", "back": True, "elements": [
        {"kind": "button", "id": "scan", "label": "扫一扫", "style": "primary"},
        {"kind": "button", "id": "pay-code", "label": "付款码", "style": "plain"},
        {"kind": "button", "id": "bills", "label": "账单", "style": "plain"},
    ]},
    "scanner": {"title": "扫一扫", "back": True, "elements": [
        {"kind": "text", "text": "把商家的二维码放进框里"},
        {"kind": "picture", "id": "qr-code", "glyph": "qr", "label": "商家的二维码"},
    ]},
}


def library_screen(name: str) -> dict:
    """A named screen, checked like an inline one (so the library itself cannot drift out of the rules)."""
    return check_screen(LIBRARY[name])
