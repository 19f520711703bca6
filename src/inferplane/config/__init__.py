"""The one typed configuration object, loaded from ``inferplane.yaml`` and validated.

The package holds, by module:

- ``problems``: from YAML and pydantic errors to located problems (``file:line:col: where: what
  — fix``), and ``Section``, the base of every section;
- ``server``: the gateway process's own sections (``server``, ``store``, ``ledger``);
- ``models``: the ``models`` entries and their routing (SLO, retries);
- ``deployments``: the ``deployments`` entries (engine, timeouts, breaker) and
  ``ENGINE_PROVIDERS``;
- ``accounting`` and ``tenancy``: prices, hardware and energy; API keys, budgets and Redis;
- ``governance``: model lifecycle rules (approvals, card fields, evaluation gate);
- ``audit``: the audit log's signed checkpoints (interval, signing key, origin);
- ``batch``: the Batch API's file limits and runner;
- ``drift``: drift detection (windows, tests' alpha, embeddings, sampling);
- ``responses``: the Responses API's stored responses (retention);
- ``systems``: the AI systems (models, tenants, intended purpose, high risk) for the EU AI Act;
- ``root``: the root ``Config``, the checks between its entries and ``default_config``;
- ``loader``: the file loader (which file is read, ``parse_config``, ``check_config``,
  ``load_config``), which takes the known provider names from its caller.

It depends on nothing in Inferplane but ``errors`` and ``engines.model_files``. Every public
name is re-exported here: ``from inferplane.config import Config, load_config``. The reference
of every key is docs/configuration.md.
"""

from inferplane.config.accounting import (
    AccountingConfig as AccountingConfig,
    EnergyConfig as EnergyConfig,
    HardwareConfig as HardwareConfig,
    PriceConfig as PriceConfig,
    PriceTierConfig as PriceTierConfig,
)
from inferplane.config.audit import AuditConfig as AuditConfig
from inferplane.config.batch import BatchConfig as BatchConfig
from inferplane.config.deployments import (
    ENGINE_PROVIDERS as ENGINE_PROVIDERS,
    BreakerConfig as BreakerConfig,
    DeploymentBatchConfig as DeploymentBatchConfig,
    DeploymentConfig as DeploymentConfig,
    EngineConfig as EngineConfig,
    EngineKind as EngineKind,
    EngineMetricsConfig as EngineMetricsConfig,
    TimeoutsConfig as TimeoutsConfig,
)
from inferplane.config.drift import DriftConfig as DriftConfig
from inferplane.config.governance import (
    GovernanceConfig as GovernanceConfig,
    RolloutConfig as RolloutConfig,
)
from inferplane.config.loader import (
    CONFIG_ENV as CONFIG_ENV,
    DEFAULT_CONFIG_FILE as DEFAULT_CONFIG_FILE,
    check_config as check_config,
    find_config_file as find_config_file,
    load_config as load_config,
    parse_config as parse_config,
)
from inferplane.config.models import (
    CacheConfig as CacheConfig,
    ModelConfig as ModelConfig,
    RetryConfig as RetryConfig,
    RoutingConfig as RoutingConfig,
    SemanticCacheConfig as SemanticCacheConfig,
    SloConfig as SloConfig,
)
from inferplane.config.observe import ObserveConfig as ObserveConfig
from inferplane.config.problems import Problem as Problem
from inferplane.config.responses import ResponsesConfig as ResponsesConfig
from inferplane.config.root import (
    Config as Config,
    cross_issues as cross_issues,
    default_config as default_config,
)
from inferplane.config.server import (
    LedgerConfig as LedgerConfig,
    ServerConfig as ServerConfig,
    StoreConfig as StoreConfig,
)
from inferplane.config.systems import SystemConfig as SystemConfig
from inferplane.config.tenancy import (
    RedisConfig as RedisConfig,
    TenancyConfig as TenancyConfig,
)
