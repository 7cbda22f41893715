"""README's two set-up commands are the ones CI runs, word for word."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_commands_as_written():
    readme = (ROOT / "README.md").read_text()
    intro = readme[: readme.index("## Thirty seconds")]
    commands = _bash_blocks(intro)
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert main_job.endswith("python -m funkeras.bench")
    assert tests.endswith("python -m pytest -n 2")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci and main_job in ci
    assert ci.index(tests) < ci.index(main_job)  # tests first: a failure stops CI
