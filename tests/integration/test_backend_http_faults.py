"""Fault handling of the OpenAI-compatible backend against a real misbehaving HTTP server on 127.0.0.1.

Every failure must come back as a GenerationResult with its error class (never raised),
retries must happen where they should (counted on the server side), Retry-After must be
honoured within its bound, and the API key must never show up anywhere.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from http_servers import FaultServer, fault_server, free_port  # noqa: F401 - fault_server is a fixture

from gemmawatch.collectors.backends.base import GenerationRequest, TargetInfo
from gemmawatch.collectors.backends.http_common import RetryPolicy, iter_sse, parse_retry_after
from gemmawatch.collectors.backends.openai_backend import OpenAIBackend
from gemmawatch.collectors.backends.openai_wire import continuation_logprob
from gemmawatch.collectors.targets import load_backend, resolve_target
from gemmawatch.errors import BackendError, ConfigError, UserError

KEY_ENV = "GEMMAWATCH_TEST_OPENAI_KEY"
FAST = {"timeout_s": 0.5, "max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "retry_after_max_s": 0.1}


def make(server: FaultServer, mode: str = "ok", **options: Any) -> OpenAIBackend:
    opts = {"base_url": server.base_url(mode), **FAST, **options}
    return OpenAIBackend(TargetInfo(name=f"fault-{mode}", backend="openai", model_id=server.model, options=opts))


def ask(mode: str, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(prompt=f"[[mode:{mode}]] Say hello", max_new_tokens=8, **kwargs)


# -- every fault ends recorded -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error_class", "posts"),
    [
        ("500", "http_500", 3),  # retried: 1 + max_retries
        ("429", "http_429", 3),
        ("slow", "timeout", 1),  # a read timeout is not retried (the server may still be working)
        ("cut", "stream_cut", 1),  # output had started: never retried
        ("cut_clean", "stream_cut", 1),
        ("badjson", "invalid_json", 1),
    ],
)
def test_each_fault_ends_as_a_result_with_its_error_class(
    fault_server: FaultServer,  # noqa: F811 - pytest fixture
    mode: str,
    error_class: str,
    posts: int,
) -> None:
    backend = make(fault_server)
    fault_server.reset()
    start = time.perf_counter()
    result = backend.stream(ask(mode))
    elapsed = time.perf_counter() - start
    assert not result.ok
    assert result.error_class == error_class
    assert result.text == "" and result.output_tokens == 0
    assert result.error and "\n" not in result.error
    assert 0 < result.e2e_s <= elapsed + 0.01
    assert len(fault_server.posts(mode)) == posts
    assert backend.retries == posts - 1
    if mode == "slow":  # the timeout fired long before the server would have answered
        assert 0.45 < elapsed < fault_server.slow_s - 1


def test_retries_recover_from_transient_500s(fault_server: FaultServer) -> None:  # noqa: F811
    backend = make(fault_server)
    fault_server.reset()
    result = backend.stream(ask("flaky500"))
    assert result.ok, result.error
    assert result.text == "".join(fault_server.tokens)
    assert len(fault_server.posts("flaky500")) == fault_server.fail_times + 1
    assert backend.retries == fault_server.fail_times


def test_retry_after_is_honoured() -> None:
    with FaultServer(fail_times=1, retry_after="1") as server:
        backend = make(server, retry_after_max_s=5)
        result = backend.stream(ask("flaky429"))
        first, second = server.posts("flaky429")
    assert result.ok, result.error
    assert 0.95 <= second.at - first.at < 1.6  # the server's 1 s, not our 10 ms backoff
    assert result.e2e_s >= 0.95  # timed from the first attempt: the wait is part of the user's latency


def test_retry_after_is_bounded() -> None:
    with FaultServer(fail_times=1, retry_after="3600") as server:
        backend = make(server, retry_after_max_s=0.2)
        start = time.perf_counter()
        result = backend.stream(ask("flaky429"))
        elapsed = time.perf_counter() - start
    assert result.ok, result.error
    assert elapsed < 1.0


def test_retry_policy_and_retry_after_parsing() -> None:
    policy = RetryPolicy(max_retries=5, backoff_base_s=1.0, backoff_max_s=4.0, retry_after_max_s=10.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)  # exponential, capped, jittered
        assert len(set(delays)) > 1
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=99.0) == 10.0
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_generate_with_mixed_good_and_bad_requests_completes(fault_server: FaultServer) -> None:  # noqa: F811
    modes = ["ok", "500", "slow", "cut", "ok", "badjson", "429", "ok", "nousage", "cut_clean"]
    expected = [None, "http_500", "timeout", "stream_cut", None, "invalid_json", "http_429", None, None, "stream_cut"]
    backend = make(fault_server, max_concurrency=4)
    results = backend.generate([ask(m) for m in modes])
    assert [r.error_class for r in results] == expected
    for result in results:
        if result.ok:
            assert result.text == "".join(fault_server.tokens)
            assert result.ttft_s is not None and result.tpot_s is not None
            assert len(result.itl_s) == len(fault_server.tokens) - 1
        else:
            assert result.text == "" and result.error


def test_connection_refused_mid_run_is_a_connection_error() -> None:
    with FaultServer() as server:
        backend = make(server)
    result = backend.stream(ask("ok"))  # the server is gone now
    assert result.error_class == "connection"
    assert backend.retries == FAST["max_retries"]


# -- streaming details --------------------------------------------------------------------------


def test_well_behaved_stream_is_timed_and_counted(fault_server: FaultServer) -> None:  # noqa: F811
    backend = make(fault_server)
    result = backend.stream(ask("ok"))
    assert result.ok and result.text == "Hello, world from the fake server."
    # Usage came in the last chunk (stream_options.include_usage was sent).
    assert (result.input_tokens, result.output_tokens, result.token_source) == (5, 8, "server")
    assert result.ttft_s is not None and 0 < result.ttft_s < result.e2e_s
    assert len(result.itl_s) == 7 and all(gap > 0 for gap in result.itl_s)
    assert result.tpot_s == pytest.approx((result.e2e_s - result.ttft_s) / 7)
    chat = backend.stream(GenerationRequest(prompt="[[mode:ok]] hi", chat=True, max_new_tokens=8))
    assert chat.ok and chat.text == result.text  # the role-only first chat chunk is not a token
    sent = fault_server.posts("ok")[-1]
    assert sent.path.endswith("/chat/completions") and sent.body is not None
    assert sent.body["messages"] == [{"role": "user", "content": "[[mode:ok]] hi"}]


def test_without_usage_or_tokenizer_chunks_are_counted(fault_server: FaultServer) -> None:  # noqa: F811
    result = make(fault_server).stream(ask("nousage"))
    assert result.ok and result.token_source == "chunks" and result.output_tokens == len(fault_server.tokens)


def test_non_streaming_server_answer_is_accepted_without_token_timings(fault_server: FaultServer) -> None:  # noqa: F811
    result = make(fault_server).stream(ask("json"))
    assert result.ok and result.text == "".join(fault_server.tokens)
    assert result.ttft_s is None and result.tpot_s is None and result.itl_s == []


def test_sse_parser_handles_comments_multiline_and_cut_events() -> None:
    lines = [": keep-alive", "", "data: {\"a\":", "data: 1}", "", "event: note", "data: x", "", "data: [DONE]", "",
             "data: {\"cut"]  # fmt: skip
    events = list(iter_sse(lines))
    assert [e.data for e in events] == ['{"a":\n1}', "x", "[DONE]", '{"cut']
    assert events[1].event == "note"
    assert [e.terminated for e in events] == [True, True, True, False]


def test_continuation_logprob_uses_text_offsets() -> None:
    response = {
        "choices": [
            {
                "logprobs": {
                    "tokens": ["<bos>", "The", " sky", " is", " blue", "."],
                    "text_offset": [0, 0, 3, 7, 10, 15],
                    "token_logprobs": [None, -3.0, -2.0, -1.0, -0.5, -0.1],
                    "top_logprobs": [None, {"A": -1.0}, {" sky": -2.0}, {" is": -1.0}, {" red": -0.4}, {".": -0.1}],
                }
            }
        ]
    }
    assert continuation_logprob(response, "The sky is", " blue") == (-0.5, False)
    assert continuation_logprob(response, "The", " sky is") == (-3.0, True)


# -- construction errors and secrets ---------------------------------------------------------------


def one_line_with_fix(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Fix:" in message, message
    return message


def test_unreachable_url_is_a_one_line_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError) as exc:
        load_backend(resolve_target(f"openai:gemma3-270m@{url}?connect_timeout_s=2"))
    assert url in one_line_with_fix(exc)


def test_missing_api_key_variable_is_a_one_line_error(
    fault_server: FaultServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UserError) as exc:
        make(fault_server, api_key_env=KEY_ENV)
    expected = f"Environment variable {KEY_ENV} named by api_key_env is not set. Fix: export {KEY_ENV}=..."
    assert str(exc.value) == expected


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"base_url": "ftp://127.0.0.1/v1"}, UserError, "Invalid base URL"),
        ({"base_url": ""}, UserError, "has no base URL"),
        ({"base_url": "http://127.0.0.1:1/v1", "timeout_s": "soon"}, ConfigError, "timeout_s"),
        ({"base_url": "http://127.0.0.1:1/v1", "api": "embeddings"}, ConfigError, "api=chat"),
        ({"base_url": "http://127.0.0.1:1/v1", "max_concurrency": 0}, ConfigError, "max_concurrency"),
        ({"base_url": "http://127.0.0.1:1/v1", "extra_body": "{nope"}, ConfigError, "extra_body"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as exc:
        OpenAIBackend(TargetInfo(name="bad", backend="openai", model_id="m", options=options))
    assert fragment in one_line_with_fix(exc)


def test_wrong_key_at_construction_is_a_one_line_error(
    fault_server: FaultServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-000")
    with pytest.raises(BackendError) as exc:
        make(fault_server, "auth", api_key_env=KEY_ENV)
    message = one_line_with_fix(exc)
    assert "401" in message and "sk-wrong" not in message


def test_model_missing_from_server_list_only_warns(
    fault_server: FaultServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = OpenAIBackend(
        TargetInfo(name="alias", backend="openai", model_id="other-name", options={"base_url": fault_server.base_url()})
    )
    assert backend.served_models == [fault_server.model]
    assert "other-name" in caplog.text and "not in the server's list" in caplog.text
    assert backend.memory_bytes() is None and backend.info.dtype is None and backend.info.quantization is None


def test_loglikelihood_without_prompt_logprobs_is_a_one_line_error(fault_server: FaultServer) -> None:  # noqa: F811
    assert make(fault_server).loglikelihood([("The cat sat", " on the mat")]) == [(-1.5, True)]
    with pytest.raises(BackendError) as exc:
        make(fault_server, "nologprobs").loglikelihood([("The cat sat", " on the mat")])
    message = one_line_with_fix(exc)
    assert "does not return prompt logprobs" in message and fault_server.base_url("nologprobs") in message


def test_api_key_never_leaks(
    fault_server: FaultServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = fault_server.api_key
    monkeypatch.setenv(KEY_ENV, key)
    backend = make(fault_server, "auth", api_key_env=KEY_ENV, max_retries=1)
    fault_server.reset()
    good = backend.stream(ask("auth"))
    assert good.ok, good.error
    assert fault_server.posts("auth")[0].authorization == f"Bearer {key}"  # it was sent...
    leaked = backend.stream(ask("leak"))  # ...and a server echoing it back does not get it into our errors
    assert leaked.error_class == "http_500" and "***" in (leaked.error or "")
    lm = backend.lm_eval_model(batch_size=2)
    assert lm.header == {"Authorization": f"Bearer {key}"}  # computed per request from the environment
    lm.max_retries = 1
    with pytest.raises(BackendError) as failed:  # lm-eval's aiohttp error (headers and all) is not chained
        lm.generate_until([_lm_request("[[mode:leak]] hi")])
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    lm_error = f"{failed.value!r} {one_line_with_fix(failed)}"
    surfaces = [repr(backend), repr(backend.info), repr(vars(backend)), str(backend.options), str(good), str(leaked)]
    surfaces += [repr(lm), repr({k: v for k, v in vars(lm).items() if k != "tokenizer"}), lm_error, caplog.text]
    for text in surfaces:
        assert key not in text
    assert "Bearer ***" in caplog.text  # lm-eval did log the request headers: scrubbed


def _lm_request(prompt: str) -> Any:
    from lm_eval.api.instance import Instance

    gen_kwargs = {"until": ["\n"], "max_gen_toks": 4}
    return Instance(request_type="generate_until", doc={}, arguments=(prompt, gen_kwargs), idx=0)


# -- lm-eval on an OpenAI-compatible target ----------------------------------------------------------


def test_lm_eval_model_per_api(fault_server: FaultServer) -> None:  # noqa: F811
    from gemmawatch.collectors.backends.openai_lm_eval import GemmawatchCompletionsLM
    from gemmawatch.evals.lm_eval_adapter import BackendLM

    fault_server.reset()
    completions = make(fault_server).lm_eval_model(batch_size=4)
    assert isinstance(completions, GemmawatchCompletionsLM)  # lm-eval's own local-completions
    assert (
        completions.generate_until([_lm_request("[[mode:ok]] Q: hi"), _lm_request("[[mode:ok]] Q: yo")])
        == ["".join(fault_server.tokens)] * 2
    )
    sent = fault_server.posts("ok")
    assert len(sent) == 2 and all(r.path.endswith("/completions") and r.body for r in sent)
    assert all(r.body is not None and isinstance(r.body["prompt"], str) for r in sent)  # text, one per request
    with pytest.raises(BackendError) as exc:  # no tokenizer: lm-eval cannot split context/continuation
        completions.loglikelihood([ll_request("a", " b")])
    assert "tokenizer" in one_line_with_fix(exc)

    fault_server.reset()
    chat = make(fault_server, api="chat").lm_eval_model(batch_size=4)
    assert isinstance(chat, BackendLM)  # plain prompts as one user message, streamed by the backend
    assert chat.generate_until([_lm_request("[[mode:ok]] hi")]) == ["".join(fault_server.tokens[:4])]  # max_gen_toks
    [record] = fault_server.posts("ok")
    assert record.path.endswith("/chat/completions") and record.body and record.body["stream"] is True


def ll_request(context: str, continuation: str) -> Any:
    from lm_eval.api.instance import Instance

    return Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=0)
