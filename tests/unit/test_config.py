"""The configuration: defaults, every validation problem with its location and fix, the CLI."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from inferplane.cli import config_cmd
from inferplane.config import (
    CONFIG_ENV,
    AccountingConfig,
    AuditConfig,
    BreakerConfig,
    CacheConfig,
    Config,
    DeploymentConfig,
    EnergyConfig,
    EngineConfig,
    HardwareConfig,
    LedgerConfig,
    ModelConfig,
    PriceConfig,
    PriceTierConfig,
    Problem,
    RedisConfig,
    ResponsesConfig,
    RetryConfig,
    RoutingConfig,
    SemanticCacheConfig,
    ServerConfig,
    SloConfig,
    StoreConfig,
    SystemConfig,
    TenancyConfig,
    TimeoutsConfig,
    check_config,
    default_config,
    load_config,
    parse_config,
)
from inferplane.errors import ConfigError
from inferplane.providers.base import provider_names

KNOWN = provider_names()  # what the CLI hands the loader: every installed adapter

GOOD = """\
server: {host: 0.0.0.0, port: 9000}
store: {url: "sqlite:///~/.inferplane/inferplane.db"}
models:
  - name: chat-small
    aliases: [small]
    routing: {policy: cost, fallbacks: [chat-large]}
  - name: chat-large
deployments:
  - name: local-gemma
    model: chat-small
    provider: llamacpp
    engine: {model: builtin:gemma-3-270m, parallel: 4}
    region: local
    hardware: {accelerator: cpu, count: 1, usd_per_hour: 0.10}
  - name: openai-mini
    model: chat-large
    provider: openai
    base_url: https://api.openai.com/v1
    api_key: env:OPENAI_API_KEY
    upstream_model: gpt-4o-mini
    region: us
    price: {input_per_mtok: 0.15, output_per_mtok: 0.60, cached_input_per_mtok: 0.075}
"""

# Each line of this file is numbered in the comment so the expected positions can be read off.
BAD = """\
server:                     # 1
  prot: 8080                # 2
  port: 70000               # 3
ledger:                     # 4
  fsync: sometimes          # 5
  commit_batch: many        # 6
models:                     # 7
  - name: chat              # 8
    aliases: [small, chat]  # 9
  - name: orphan            # 10
deployments:                # 11
  - name: a                 # 12
    model: chat             # 13
    provider: opnai         # 14
    api_key: sk-live-12345  # 15
  - name: a                 # 16
    model: nope             # 17
    provider: llamacpp      # 18
    base_url: http://x      # 19
"""


def problems_of(text: str) -> list[Problem]:
    config, problems = parse_config(text, "inferplane.yaml", known_providers=KNOWN)
    assert config is None, "expected the text to be invalid"
    return problems


def only(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def minimal(models: str, deployments: str) -> str:
    """A file with these (unindented) ``models`` and ``deployments`` lists."""
    return (
        "models:\n"
        + textwrap.indent(models, "  ")
        + "deployments:\n"
        + textwrap.indent(deployments, "  ")
    )


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray ./inferplane.yaml or $INFERPLANE_CONFIG from the machine running the tests."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


# --- defaults ---------------------------------------------------------------------------------


def test_section_defaults() -> None:
    assert ServerConfig() == ServerConfig(
        host="127.0.0.1", port=8080, max_body_bytes=4 * 1024 * 1024, shutdown_grace_s=30.0
    )
    assert StoreConfig().url == "sqlite:///~/.inferplane/inferplane.db"
    ledger = LedgerConfig()
    assert (ledger.dir, ledger.commit_interval_ms, ledger.commit_batch) == (None, 250, 1000)
    assert (ledger.fsync, ledger.fsync_interval_ms) == ("interval", 200)
    engine = EngineConfig()
    assert (engine.model, engine.parallel, engine.context, engine.batch) == (
        "builtin:gemma-3-270m",
        8,
        2048,
        512,
    )
    assert (engine.threads, engine.chat_template, engine.startup_timeout_s) == (
        None,
        "gemma",
        120.0,
    )


def test_default_config_serves_the_embedded_model_as_default() -> None:
    config = default_config()
    assert config.model_names() == ["default", "gemma-3-270m"]
    [deployment] = config.deployments
    assert (deployment.name, deployment.model, deployment.provider) == (
        "local-gemma",
        "default",
        "llamacpp",
    )
    assert deployment.engine == EngineConfig()
    assert deployment.hardware == HardwareConfig(accelerator="cpu", count=1, usd_per_hour=0.10)


def test_no_file_at_all_gives_the_default_config() -> None:
    assert load_config(None, known_providers=KNOWN) == default_config()


def test_only_server_port_keeps_the_default_models(tmp_path: Path) -> None:
    path = tmp_path / "only-port.yaml"
    path.write_text("server:\n  port: 9999\n")
    config = load_config(path, known_providers=KNOWN)
    assert config.server.port == 9999
    assert config.server.host == "127.0.0.1"
    assert config.models == default_config().models
    assert config.deployments == default_config().deployments


def test_empty_file_and_empty_sections_mean_the_defaults() -> None:
    assert parse_config("", known_providers=KNOWN)[0] == default_config()
    assert parse_config("server:\nledger:\n", known_providers=KNOWN)[0] == default_config()


def test_full_example_loads() -> None:
    config, problems = parse_config(GOOD, known_providers=KNOWN)
    assert problems == []
    assert config is not None
    assert config.server.port == 9000
    assert config.deployments[0].engine == EngineConfig(parallel=4)
    assert config.deployments[1].price is not None
    assert config.deployments[1].price.cached_input_per_mtok == 0.075
    assert config.models[0].routing.fallbacks == ["chat-large"]


# --- where the file comes from ----------------------------------------------------------------


def test_local_inferplane_yaml_is_used_when_present(tmp_path: Path) -> None:
    (tmp_path / "inferplane.yaml").write_text("server: {port: 7001}\n")
    assert load_config(None, known_providers=KNOWN).server.port == 7001


def test_env_var_names_the_file_before_the_local_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inferplane.yaml").write_text("server: {port: 7001}\n")
    other = tmp_path / "other.yaml"
    other.write_text("server: {port: 7002}\n")
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_config(None, known_providers=KNOWN).server.port == 7002
    # An explicit path wins over both.
    assert load_config(tmp_path / "inferplane.yaml", known_providers=KNOWN).server.port == 7001


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", known_providers=KNOWN)
    assert "no such file" in caught.value.problems[0]


# --- problems, their positions and fixes ------------------------------------------------------


def test_problem_str_format() -> None:
    problem = Problem(
        "inferplane.yaml",
        12,
        5,
        "deployments[1].provider",
        "unknown provider 'opnai'",
        "use one of: llamacpp, openai (did you mean 'openai'?)",
    )
    assert str(problem) == (
        "inferplane.yaml:12:5: deployments[1].provider: unknown provider 'opnai'"
        " — fix: use one of: llamacpp, openai (did you mean 'openai'?)"
    )
    assert str(Problem("f.yaml", None, None, "(file)", "no such file", "x")) == (
        "f.yaml: (file): no such file — fix: x"
    )


def test_every_problem_of_a_bad_file_is_reported_at_its_line() -> None:
    found = [(p.line, p.column, p.location) for p in problems_of(BAD)]
    assert found == [
        (2, 3, "server.prot"),
        (3, 9, "server.port"),
        (5, 10, "ledger.fsync"),
        (6, 17, "ledger.commit_batch"),
        (9, 22, "models[0].aliases[1]"),
        (10, 5, "models[1]"),  # orphan: no deployment
        (14, 15, "deployments[0].provider"),
        (15, 14, "deployments[0].api_key"),
        (16, 11, "deployments[1].name"),
        (17, 12, "deployments[1].model"),
        (19, 15, "deployments[1].base_url"),
    ]


def test_unknown_key_suggests_the_close_one_and_lists_the_allowed() -> None:
    problem = only("server: {prot: 80}")
    assert problem.message == "unknown key 'prot'"
    assert "did you mean 'port'?" in problem.fix
    assert "host, max_body_bytes, port, shutdown_grace_s" in problem.fix
    assert (problem.line, problem.column) == (1, 10)


def test_wrong_type_names_the_expected_type_with_an_example() -> None:
    problem = only("server:\n  port: eighty\n")
    assert problem.message == "expected a whole number, got a string ('eighty')"
    assert problem.fix == "write a whole number, e.g. `port: 8080`"
    assert (problem.line, problem.location) == (2, "server.port")


def test_booleans_and_quoted_numbers_are_not_numbers() -> None:
    assert only("server: {port: true}").message == "expected a whole number, got a boolean (true)"
    assert only("server: {port: '80'}").location == "server.port"
    # an int is a fine float
    assert parse_config("server: {shutdown_grace_s: 5}", known_providers=KNOWN)[1] == []


def test_number_where_a_name_belongs_is_told_to_quote_it() -> None:
    problem = only(minimal("- name: 2024\n", "- {name: d, model: '2024', provider: openai}\n"))
    assert problem.fix == 'quote it: `name: "2024"`'


def test_out_of_range_gives_the_range() -> None:
    problem = only("server: {port: 0}")
    assert problem.fix == "use a value at least 1 and at most 65535"
    assert only("ledger: {commit_batch: 0}").fix == "use a value greater than 0"


def test_literal_choice_lists_the_choices() -> None:
    problem = only("ledger: {fsync: alway}")
    assert problem.fix == "use one of: always, interval, never (did you mean 'always'?)"


def test_yaml_syntax_error_has_line_column_and_fix() -> None:
    problem = only("server:\n  port: 8080\n   host: x\n")
    assert problem.location == "(syntax)"
    assert problem.message.startswith("YAML syntax error")
    assert problem.line == 3
    assert problem.fix


def test_tab_indentation_gets_a_specific_fix() -> None:
    assert only("server:\n\tport: 1\n").fix == "indent with spaces, not tabs"


def test_top_level_must_be_a_mapping() -> None:
    assert only("- server\n").message == "the file must be a mapping of sections"


def test_duplicate_key_is_reported() -> None:
    problem = only("server:\n  port: 1\n  port: 2\n")
    assert (problem.line, problem.location) == (3, "server.port")
    assert "written twice" in problem.message


def test_missing_key_points_at_the_entry() -> None:
    text = minimal("- name: m\n", "- name: d\n  model: m\n")
    problem = only(text)
    assert problem.message == "missing required key 'provider'"
    assert problem.location == "deployments[0]"
    assert (problem.line, problem.column) == (4, 5)
    assert problem.fix == "add `provider: openai`"


# --- cross-field problems ---------------------------------------------------------------------


def test_duplicate_model_name() -> None:
    problem = only(minimal("- name: m\n- name: m\n", "- {name: d, model: m, provider: openai}\n"))
    assert problem.location == "models[1].name"
    assert problem.message == "'m' is already used by models[0].name"


def test_alias_may_not_clash_with_a_model_name_or_another_alias() -> None:
    models = "- {name: a, aliases: [x]}\n- {name: b, aliases: [a, x]}\n"
    deployments = (
        "- {name: d1, model: a, provider: openai}\n- {name: d2, model: b, provider: openai}\n"
    )
    problems = problems_of(minimal(models, deployments))
    assert [(p.location, p.message) for p in problems] == [
        ("models[1].aliases[0]", "'a' is already used by models[0].name"),
        ("models[1].aliases[1]", "'x' is already used by models[0].aliases[0]"),
    ]


def test_deployment_must_name_a_declared_model() -> None:
    problems = problems_of(
        minimal("- name: chat\n", "- {name: d, model: chta, provider: openai}\n")
    )
    assert [(p.location, p.message) for p in problems] == [
        ("models[0]", "model 'chat' has no deployment"),
        ("deployments[0].model", "unknown model 'chta'"),
    ]
    assert "did you mean 'chat'?" in problems[1].fix


def test_deployment_names_the_model_not_an_alias() -> None:
    models = "- {name: chat, aliases: [small]}\n"
    problem = only(minimal(models, "- {name: d, model: small, provider: openai}\n"))
    assert problem.fix == "write `model: chat`"


def test_duplicate_deployment_name() -> None:
    deployments = (
        "- {name: d, model: m, provider: openai}\n- {name: d, model: m, provider: openai}\n"
    )
    problem = only(minimal("- name: m\n", deployments))
    assert problem.location == "deployments[1].name"
    assert problem.message == "'d' is already used by deployments[0].name"


def test_fallbacks_must_name_declared_models_other_than_itself() -> None:
    models = "- name: a\n  routing: {fallbacks: [b, bb]}\n- name: b\n  routing: {fallbacks: [b]}\n"
    deployments = (
        "- {name: d1, model: a, provider: openai}\n- {name: d2, model: b, provider: openai}\n"
    )
    problems = problems_of(minimal(models, deployments))
    assert [(p.location, p.message) for p in problems] == [
        ("models[0].routing.fallbacks[1]", "unknown model 'bb'"),
        ("models[1].routing.fallbacks[0]", "model 'b' falls back to itself"),
    ]


def test_a_semantic_cache_embeds_with_a_declared_model() -> None:
    models = ("- name: a\n  cache: {semantic: {enabled: true, embeddings: vecs}}\n"
              "- name: vectors\n")
    deployments = ("- {name: d1, model: a, provider: openai}\n"
                   "- {name: d2, model: vectors, provider: openai}\n")
    problems = problems_of(minimal(models, deployments))
    assert [(p.location, p.message) for p in problems] == [
        ("models[0].cache.semantic.embeddings", "unknown model 'vecs'")]
    config, found = parse_config(minimal(models.replace("vecs", "vectors"), deployments),
                                 known_providers=KNOWN)
    assert found == [] and config is not None


def test_model_without_deployment() -> None:
    models = "- name: a\n- name: lonely\n"
    problem = only(minimal(models, "- {name: d, model: a, provider: openai}\n"))
    assert (problem.location, problem.message) == ("models[1]", "model 'lonely' has no deployment")
    assert "`model: lonely`" in problem.fix


def test_models_without_deployments_section() -> None:
    problem = only("models:\n  - name: a\n")
    assert problem.message == "model 'a' has no deployment"


def test_unknown_provider_suggests_a_known_one() -> None:
    problem = only(minimal("- name: m\n", "- {name: d, model: m, provider: opnai}\n"))
    assert problem.location == "deployments[0].provider"
    assert problem.fix == ("use one of: anthropic, gemini, llamacpp, managed, openai, ray "
                           "(did you mean 'openai'?)")


def test_known_providers_is_a_parameter() -> None:
    text = minimal("- name: m\n", "- {name: d, model: m, provider: my-plugin}\n")
    assert parse_config(text, known_providers=KNOWN)[0] is None
    config, problems = parse_config(text, known_providers={"my-plugin"})
    assert problems == []
    assert config is not None


def test_llamacpp_gets_a_default_engine() -> None:
    config, _ = parse_config(
        minimal("- name: m\n", "- {name: d, model: m, provider: llamacpp}\n"), known_providers=KNOWN
    )
    assert config is not None
    assert config.deployments[0].engine == EngineConfig()
    built = DeploymentConfig(name="d", model="m", provider="llamacpp")
    assert built.engine == EngineConfig()


def test_llamacpp_takes_no_base_url() -> None:
    deployments = "- {name: d, model: m, provider: llamacpp, base_url: 'http://h:1/v1'}\n"
    problem = only(minimal("- name: m\n", deployments))
    assert problem.location == "deployments[0].base_url"


def test_engine_only_with_an_engine_provider() -> None:
    deployments = "- {name: d, model: m, provider: openai, engine: {parallel: 2}}\n"
    problem = only(minimal("- name: m\n", deployments))
    assert problem.location == "deployments[0].engine"


def test_engine_model_is_builtin_or_gguf() -> None:
    deployments = "- name: d\n  model: m\n  provider: llamacpp\n  engine: {model: builtin:gemma}\n"
    assert only(minimal("- name: m\n", deployments)).location == "deployments[0].engine.model"
    ok = "- name: d\n  model: m\n  provider: llamacpp\n  engine: {model: ~/m/x.gguf}\n"
    assert parse_config(minimal("- name: m\n", ok), known_providers=KNOWN)[1] == []


# --- secrets ----------------------------------------------------------------------------------


def test_literal_api_key_is_rejected_without_echoing_it() -> None:
    secret = "sk-live-0123456789abcdef"
    deployments = f"- {{name: d, model: m, provider: openai, api_key: {secret}}}\n"
    problem = only(minimal("- name: m\n", deployments))
    assert problem.location == "deployments[0].api_key"
    assert "env:OPENAI_API_KEY" in problem.fix
    assert secret not in str(problem)
    with pytest.raises(ValidationError) as caught:
        DeploymentConfig(name="d", model="m", provider="openai", api_key=secret)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("ref", ["env:OPENAI_API_KEY", "env:_K", "env:key2"])
def test_env_reference_is_accepted(ref: str) -> None:
    assert DeploymentConfig(name="d", model="m", provider="openai", api_key=ref).api_key == ref


@pytest.mark.parametrize("bad", ["env:", "env:1ABC", "ENV:KEY", "env:A B"])
def test_malformed_env_reference_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        DeploymentConfig(name="d", model="m", provider="openai", api_key=bad)


# --- the object in code -----------------------------------------------------------------------


def test_config_is_frozen_and_forbids_extra_keys() -> None:
    config = default_config()
    with pytest.raises(ValidationError):
        config.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ServerConfig(prot=1)  # type: ignore[call-arg]


def test_cross_field_problems_raise_in_code_too() -> None:
    with pytest.raises(ValidationError, match="unknown model 'nope'"):
        Config(
            models=[ModelConfig(name="m")],
            deployments=[
                DeploymentConfig(name="a", model="m", provider="openai"),
                DeploymentConfig(name="b", model="nope", provider="openai"),
            ],
        )


def test_model_names_and_resolve_alias() -> None:
    config, _ = parse_config(GOOD, known_providers=KNOWN)
    assert config is not None
    assert config.model_names() == ["chat-small", "small", "chat-large"]
    resolved = config.resolve_alias("small")
    assert resolved is not None
    assert resolved.name == "chat-small"
    assert config.resolve_alias("chat-large") is config.models[1]
    assert config.resolve_alias("nope") is None
    assert [d.name for d in config.deployments_of("small")] == ["local-gemma"]


def test_load_config_raises_config_error_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path, known_providers=KNOWN)
    assert len(caught.value.problems) == 11
    assert caught.value.problems[0].startswith(f"{path}:2:3: server.prot: unknown key 'prot'")
    assert [str(p) for p in check_config(path, known_providers=KNOWN)] == caught.value.problems


# --- CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_check_ok(tmp_path: Path) -> None:
    path = tmp_path / "inferplane.yaml"
    path.write_text(GOOD)
    result = runner.invoke(config_cmd.app, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK: 2 models, 2 deployments" in result.output


def test_cli_check_without_a_file_checks_the_defaults() -> None:
    result = runner.invoke(config_cmd.app, ["check"])
    assert result.exit_code == 0, result.output
    assert "OK: 1 model, 1 deployment" in result.output


def test_cli_check_reports_problems_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = runner.invoke(config_cmd.app, ["check", str(path)])
    assert result.exit_code == 1
    assert "11 problems" in result.output
    # One line per problem, unwrapped, with the brackets of the location intact.
    assert f"{path}:14:15: deployments[0].provider: unknown provider 'opnai'" in result.output
    assert "sk-live-12345" not in result.output


def test_cli_check_missing_file_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(config_cmd.app, ["check", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert "no such file" in result.output


# --- docs -------------------------------------------------------------------------------------


def test_every_key_is_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    text = docs.read_text(encoding="utf-8")
    sections: list[type[BaseModel]] = [Config, ServerConfig, StoreConfig, LedgerConfig]
    sections += [ModelConfig, RoutingConfig, DeploymentConfig, EngineConfig, HardwareConfig]
    sections += [PriceConfig, SloConfig, RetryConfig, TimeoutsConfig, EnergyConfig, BreakerConfig]
    sections += [PriceTierConfig, AccountingConfig, TenancyConfig, RedisConfig, CacheConfig,
                 SemanticCacheConfig, AuditConfig, SystemConfig, ResponsesConfig]
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in sections
        for name in cls.model_fields
        if not re.search(rf"`{re.escape(name)}`", text)
    ]
    assert undocumented == []


@pytest.mark.parametrize("wrong", ["aliases: gemma", "routing: {fallbacks: nope}",
                                   "aliases: [1]"])
def test_a_type_error_in_a_model_does_not_hide_an_unknown_model_elsewhere(wrong: str) -> None:
    """A model whose aliases or fallbacks cannot be read still has a name: a deployment naming
    no model is reported beside the type error, in one check."""
    text = ("models:\n  - name: chat\n    " + wrong + "\n"
            "deployments:\n  - {name: a, model: chat, provider: openai}\n"
            "  - {name: b, model: nosuch, provider: openai}\n")
    found = {(p.location, p.message) for p in parse_config(text, known_providers=KNOWN)[1]}
    assert ("deployments[1].model", "unknown model 'nosuch'") in found
    assert any(location.startswith("models[0].") for location, _ in found)


def test_a_deployment_with_an_unreadable_name_still_deploys_its_model() -> None:
    text = ("models:\n  - name: chat\n  - name: spare\n"
            "deployments:\n  - {name: [x], model: chat, provider: openai}\n")
    locations = [p.location for p in parse_config(text, known_providers=KNOWN)[1]]
    assert locations == ["models[1]", "deployments[0].name"]  # spare has no deployment


def test_store_and_redis_urls_may_come_from_the_environment_or_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL with a password in it stays out of the file (a Kubernetes Secret, say)."""
    (tmp_path / "redis-url").write_text("redis://:s3cret@cache:6379/0\n")
    monkeypatch.setenv("STORE_URL", "postgresql://inferplane:s3cret@db/inferplane")
    path = tmp_path / "inferplane.yaml"
    path.write_text(textwrap.dedent(f"""\
        store: {{url: 'env:STORE_URL'}}
        redis: {{url: 'file:{tmp_path / "redis-url"}'}}
        models: [{{name: m}}]
        deployments: [{{name: d, model: m, provider: openai, base_url: 'http://x/v1'}}]
        """))
    config = load_config(path, known_providers=KNOWN)
    assert config.store.url == "postgresql://inferplane:s3cret@db/inferplane"
    assert config.redis.url == "redis://:s3cret@cache:6379/0"
    monkeypatch.delenv("STORE_URL")
    with pytest.raises(ConfigError) as missing:
        load_config(path, known_providers=KNOWN)
    shown = "\n".join(missing.value.problems)
    assert "STORE_URL is not set" in shown and "s3cret" not in shown
