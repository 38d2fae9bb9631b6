import ast
from pathlib import Path

import analyzers

FORBIDDEN = {"crawler", "market", "index", "reports", "scheduler", "scrapy", "aiohttp", "sqlite3", "requests"}


def test_analyzers_are_pure():
    """Analyzers import only the data model, the settings' defaults, the standard library, pyahocorasick and
    androguard (for APK files)."""
    root = Path(analyzers.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
                if name.startswith("finmon"):
                    assert name in ("finmon.model", "finmon.settings"), f"{path.name} imports {name}"


def test_public_api():
    assert callable(analyzers.analyze) and callable(analyzers.rules_table)
    assert [r.id for r in analyzers.RULES] == [row["id"] for row in analyzers.rules_table()]
