"""Task-name resolution and include-path YAML checks (no model needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.evals.lm_eval_tasks import load_tasks, resolve_tasks, validate_yaml_file

GOOD_TASK = """\
task: {name}
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def good_dir(tmp_path: Path) -> Path:
    data = tmp_path / "items.jsonl"
    data.write_text(
        '{"q": "1+1?", "choices": ["2", "3"], "answer": 0}\n{"q": "2+2?", "choices": ["5", "4"], "answer": 1}\n'
    )
    _write(tmp_path, "my_task.yaml", GOOD_TASK.format(name="gw_test_task", data=data))
    return tmp_path


def test_smoke_group_resolves_from_the_bundled_suite() -> None:
    assert resolve_tasks(["smoke"]) == ["smoke"]
    assert resolve_tasks(["smoke_gen", "smoke_mc"]) == ["smoke_gen", "smoke_mc"]


def test_group_expands_to_its_subtasks() -> None:
    loaded = load_tasks(["smoke"])
    assert list(loaded.leaves) == [
        "smoke_mc_arithmetic",
        "smoke_mc_science",
        "smoke_mc_geography",
        "smoke_mc_vocabulary",
        "smoke_mc_common_sense",
        "smoke_gen",
    ]
    assert [type(o).__name__ for o in loaded.objects] == ["Group"]


def test_unknown_task_names_close_matches_and_fix() -> None:
    with pytest.raises(UnknownNameError) as info:
        resolve_tasks(["smoke_gne"])
    message = str(info.value)
    assert message.startswith("Unknown task 'smoke_gne'. Did you mean: smoke_gen")
    assert "--include-path" in message and "lm_eval --tasks list" in message
    assert "\n" not in message


def test_unknown_task_without_close_match_still_says_how_to_fix() -> None:
    with pytest.raises(UnknownNameError, match=r"^Unknown task 'zzqqxxyy_nothing'\. Fix: "):
        resolve_tasks(["zzqqxxyy_nothing"])


def test_include_path_adds_tasks(good_dir: Path) -> None:
    assert resolve_tasks(["gw_test_task"], include_path=[good_dir]) == ["gw_test_task"]
    loaded = load_tasks(["gw_test_task"], include_path=[good_dir])
    assert list(loaded.leaves) == ["gw_test_task"]
    assert len(loaded.leaves["gw_test_task"].eval_docs) == 2


def test_glob_expands(good_dir: Path) -> None:
    _write(good_dir, "second.yaml", GOOD_TASK.format(name="gw_test_other", data=good_dir / "items.jsonl"))
    names = resolve_tasks(["gw_test_*"], include_path=[good_dir])
    assert names == ["gw_test_other", "gw_test_task"]


def test_yaml_syntax_error_is_a_one_line_config_error_naming_the_file(good_dir: Path) -> None:
    bad = _write(good_dir, "broken.yaml", "task: broken\ndoc_to_text: [unclosed\n  output_type: x\n")
    with pytest.raises(ConfigError) as info:
        resolve_tasks(["gw_test_task"], include_path=[good_dir])
    message = str(info.value)
    assert str(bad) in message and "Malformed task YAML" in message and "Fix:" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("task: t1\noutput_type: generate_until\ndoc_to_text: x\n", "missing required key 'dataset_path'"),
        ("task: t2\ndataset_path: json\noutput_type: multiple_choice\n", "'doc_to_choice'"),
        ("task: t3\ndataset_path: json\noutput_type: generate\n", "output_type 'generate'"),
        ("task: t4\ndataset_path: json\ndoc_to_txt: x\n", "unknown key 'doc_to_txt' (did you mean 'doc_to_text'?)"),
        ("group: g1\naggregate_metric_list: []\n", "group has no 'task' list"),
        ("- just\n- a list\n", "Expected YAML dict"),
    ],
)
def test_yaml_missing_or_wrong_keys(tmp_path: Path, body: str, problem: str) -> None:
    path = _write(tmp_path, "bad.yaml", body)
    with pytest.raises(ConfigError) as info:
        validate_yaml_file(path)
    assert problem in str(info.value) and str(path) in str(info.value)


def test_templates_without_task_key_are_allowed(tmp_path: Path) -> None:
    """Shared settings for `include:` (like the smoke suite's template) are not tasks."""
    validate_yaml_file(_write(tmp_path, "_template.yaml", "output_type: multiple_choice\nnum_fewshot: 0\n"))


def test_missing_include_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_tasks(["smoke"], include_path=[tmp_path / "nope"])


def test_task_that_fails_to_load_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    _write(tmp_path, "t.yaml", GOOD_TASK.format(name="gw_test_missing_data", data=missing))
    with pytest.raises(ConfigError) as info:
        load_tasks(["gw_test_missing_data"], include_path=[tmp_path])
    message = str(info.value)
    assert "gw_test_missing_data" in message and str(tmp_path / "t.yaml") in message and "\n" not in message


def test_same_task_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="requested twice"):
        load_tasks(["smoke", "smoke_gen"])


def test_builtin_lm_eval_names_resolve_without_loading_them() -> None:
    assert resolve_tasks(["hellaswag"]) == ["hellaswag"]
    with pytest.raises(UnknownNameError, match="Did you mean: hellaswag"):
        resolve_tasks(["hellaswg"])


def test_bundled_names_use_the_small_index() -> None:
    """Only names outside the bundled suites/include paths need lm-eval's full (slow) index."""
    from gemmawatch.evals.lm_eval_tasks import task_manager

    tm = task_manager(["smoke"])
    assert "smoke_gen" in tm.all_tasks and "hellaswag" not in tm.all_tasks
