"""The five target groups the programme names (seed plan), in catalogue order."""
from flask_babel import lazy_gettext as _l

AUDIENCES = {
    "elder": _l("老年人"),
    "farmer": _l("农民"),
    "cadre": _l("领导干部和公务员"),
    "worker": _l("产业工人"),
    "youth": _l("青少年"),
}
AUDIENCE_CODES = tuple(AUDIENCES)


def audience_label(code: str) -> str:
    return str(AUDIENCES.get(code, code))
