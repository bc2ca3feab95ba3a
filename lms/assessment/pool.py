"""The item pool package content/assessment/ (format: docs/assessment-format.md): read, validate, import.

Validated whole before anything is written, like a course package: an error names the file, the field
and the line (`content/assessment/items/knowledge.yaml:40: items[3].explanation: 缺少必填字段`). Items are
written in quiz.yaml's question shape and checked by the quiz rules (lms/quizzes/format.py). Re-import is
idempotent by item `id`: an unchanged item stays, a changed one is updated (or, once sittings answered it,
retired and written as a new version), an item no longer in the package is retired; old sittings keep
their answers and the items they answered.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lms.assessment.models import DIMENSION_LABELS, DIMENSIONS, AssessmentAnswer, AssessmentItem, AssessmentPool
from lms.courses.importer import ContentError, _inside, _require, _YamlFile, load_question
from lms.extensions import db

POOL_FILE = "assessment.yaml"
ITEM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass
class ItemSpec:
    key: str
    dimension: str
    benchmark: str
    difficulty: int
    kind: str
    text: str
    explanation: str
    choices: list[tuple[str, bool]]
    courses: list[str]
    where: str = ""  # file:line, for messages

    @property
    def spec_hash(self) -> str:
        data = [self.dimension, self.benchmark, self.difficulty, self.kind, self.text, self.explanation,
                [list(c) for c in self.choices], self.courses]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


@dataclass
class PoolSpec:
    package_id: str
    title: str
    minutes: int
    threshold: int
    retake_days: int
    draw: dict[str, int]
    weights: dict[str, int]
    items: list[ItemSpec] = field(default_factory=list)
    content_hash: str = ""

    @property
    def rules(self) -> dict:
        return {"draw": self.draw, "weights": self.weights, "threshold": self.threshold, "minutes": self.minutes}


def is_pool(path: Path) -> bool:
    return (Path(path) / POOL_FILE).is_file()


def pool_folders(path: Path) -> list[Path]:
    """`path` itself when it is an item pool, else its sub-folders that hold an assessment.yaml."""
    path = Path(path)
    if is_pool(path):
        return [path]
    return sorted(p for p in path.iterdir() if is_pool(p))


def _whole(doc: _YamlFile, data: dict, key: str, low: int, high: int, *prefix) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        raise doc.error("缺少必填字段", *prefix, key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise doc.error(f"应是 {low} 到 {high} 之间的整数", *prefix, key)
    return value


def _per_dimension(doc: _YamlFile, data: dict, key: str, low: int, high: int) -> dict[str, int]:
    table = data.get(key)
    if not isinstance(table, dict):
        raise doc.error(f"应按维度写出：{', '.join(DIMENSIONS)}", key)
    unknown = [name for name in table if name not in DIMENSIONS]
    if unknown:
        raise doc.error(f"未知的维度“{unknown[0]}”，可选：{', '.join(DIMENSIONS)}", key, unknown[0])
    return {name: _whole(doc, table, name, low, high, key) for name in DIMENSIONS}


def load_pool(folder: Path) -> PoolSpec:
    """Parse and validate the whole pool. Raises ContentError naming file, field and line."""
    folder = Path(folder)
    doc = _YamlFile(folder / POOL_FILE)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error(f"{POOL_FILE} 应是一个键值映射")
    package_id = _require(doc, data, "id", str)
    spec = PoolSpec(
        package_id=package_id, title=_require(doc, data, "title", str),
        minutes=_whole(doc, data, "minutes", 1, 180), threshold=_whole(doc, data, "threshold", 1, 99),
        retake_days=_whole(doc, data, "retake_days", 0, 365),
        draw=_per_dimension(doc, data, "draw", 1, 100), weights=_per_dimension(doc, data, "weights", 0, 100),
    )
    if sum(spec.weights.values()) != 100:
        raise doc.error(f"各维度分值之和应为 100（现在是 {sum(spec.weights.values())}）", "weights")
    files = sorted((folder / "items").glob("*.yaml")) if (folder / "items").is_dir() else []
    if not files:
        raise doc.error("题库为空：items/ 文件夹下没有 *.yaml 题目文件")
    digest = hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str).encode())
    seen: dict[str, str] = {}
    for path in files:
        if _inside(folder, path.relative_to(folder)) is None:
            raise ContentError(path, None, "指向题库文件夹之外（符号链接不能离开题库包）")
        item_doc = _YamlFile(path)
        for item in _items(item_doc):
            if item.key in seen:
                raise item_doc.error(f"题目 id“{item.key}”重复（已在 {seen[item.key]}）",
                                     "items", spec_index(item_doc, item.key), "id")
            seen[item.key] = item.where
            spec.items.append(item)
        digest.update(path.read_bytes())
    for dimension in DIMENSIONS:
        have = sum(1 for item in spec.items if item.dimension == dimension)
        if have < spec.draw[dimension]:
            raise doc.error(f"题库太小：{DIMENSION_LABELS[dimension]}（{dimension}）只有 {have} 道题，"
                            f"每次要抽 {spec.draw[dimension]} 道", "draw", dimension)
    spec.content_hash = digest.hexdigest()
    return spec


def spec_index(doc: _YamlFile, key: str) -> int:
    raw = doc.data.get("items") if isinstance(doc.data, dict) else None
    return max((n for n, q in enumerate(raw or []) if isinstance(q, dict) and str(q.get("id")) == key), default=0)


def _items(doc: _YamlFile) -> list[ItemSpec]:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise doc.error("题目文件应写成 items: 加题目列表", "items")
    parsed = []
    for n, q in enumerate(data["items"]):
        at = ("items", n)
        if not isinstance(q, dict):
            raise doc.error("每道题应是一个键值映射", *at)
        key = str(_require(doc, q, "id", (str, int), *at))
        if not ITEM_KEY.fullmatch(key):
            raise doc.error("题目 id 应是 1–32 个字母、数字、下划线或连字符（如 k001）", *at, "id")
        dimension = _require(doc, q, "dimension", str, *at)
        if dimension not in DIMENSIONS:
            raise doc.error(f"未知的维度“{dimension}”，可选：{', '.join(DIMENSIONS)}", *at, "dimension")
        benchmark = _require(doc, q, "benchmark", str, *at)
        difficulty = q.get("difficulty")
        if isinstance(difficulty, bool) or difficulty not in (1, 2, 3):
            raise doc.error("难度应是 1、2 或 3", *at, "difficulty")
        question = load_question(doc, q, *at)  # the quiz rules, as for quiz.yaml
        if question["scenario"] is not None:
            raise doc.error("自测题不用情景（scenario）", *at, "scenario")
        kind, text, explanation, choices = (question[k] for k in ("kind", "text", "explanation", "choices"))
        courses = q.get("courses") or []
        if not isinstance(courses, list) or not all(isinstance(c, str) for c in courses):
            raise doc.error("courses 应是课程标识（slug）的列表", *at, "courses")
        parsed.append(ItemSpec(key=key, dimension=dimension, benchmark=benchmark.strip(), difficulty=difficulty,
                               kind=kind, text=text, explanation=explanation, choices=choices,
                               courses=list(courses), where=f"{doc.path}:{doc.line(*at)}"))
    return parsed


def import_pool(folder: Path) -> tuple[AssessmentPool, str, dict[str, int]]:
    """Import or update the pool in one transaction. Returns (pool, "created"|"updated"|"unchanged",
    counts of items {"added", "changed", "retired"})."""
    spec = load_pool(folder)
    pool = AssessmentPool.query.filter_by(package_id=spec.package_id).first()
    counts = {"added": 0, "changed": 0, "retired": 0}
    if pool is not None and pool.content_hash == spec.content_hash:
        return pool, "unchanged", counts
    outcome = "updated" if pool else "created"
    try:
        if pool is None:
            pool = AssessmentPool(package_id=spec.package_id)
            db.session.add(pool)
        pool.title, pool.minutes, pool.threshold = spec.title, spec.minutes, spec.threshold
        pool.retake_days, pool.content_hash = spec.retake_days, spec.content_hash
        pool.rules_json = json.dumps(spec.rules, sort_keys=True)
        db.session.flush()
        _write_items(pool, spec.items, counts)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return pool, outcome, counts


def _write_items(pool: AssessmentPool, items: list[ItemSpec], counts: dict[str, int]) -> None:
    rows = AssessmentItem.query.filter_by(pool_id=pool.id).all()
    current = {row.key: row for row in rows if not row.retired}
    latest = {}
    for row in rows:
        latest[row.key] = max(latest.get(row.key, 0), row.version)
    answered = {item_id for (item_id,) in db.session.query(AssessmentAnswer.item_id).distinct()}
    for item in items:
        row = current.pop(item.key, None)
        if row is not None and row.spec_hash == item.spec_hash:
            continue
        if row is not None and row.id not in answered:
            _fill(row, item)  # nobody answered it: changed in place
            counts["changed"] += 1
            continue
        if row is not None:
            row.retired = True  # answered: kept as it was for the sittings that answered it
            counts["changed"] += 1
        else:
            counts["added"] += 1
        new = AssessmentItem(pool_id=pool.id, key=item.key, version=latest.get(item.key, 0) + 1)
        _fill(new, item)
        db.session.add(new)
        db.session.flush()  # the retired version and the new one never both claim the key at once
    for row in current.values():  # gone from the package: never drawn again
        row.retired = True
        counts["retired"] += 1


def _fill(row: AssessmentItem, item: ItemSpec) -> None:
    row.dimension, row.benchmark, row.difficulty, row.kind = item.dimension, item.benchmark, item.difficulty, item.kind
    row.text, row.explanation = item.text, item.explanation
    row.choices_json = json.dumps([[text, correct] for text, correct in item.choices], ensure_ascii=False)
    row.courses_json = json.dumps(item.courses, ensure_ascii=False)
    row.spec_hash = item.spec_hash
    row.retired = False
