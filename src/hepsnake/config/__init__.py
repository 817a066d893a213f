"""The workflow config: read and validated once (:mod:`.loading`, :mod:`.schema`,
:mod:`.samples`, :mod:`.checks`), resolved with its models and studies (:mod:`.resolved`),
then cut into the typed contract of each stage (:mod:`.contracts`)."""

from hepsnake.config.contracts import (
    STAGES,
    contract,
    part_digest,
    stage_digest,
    trial_contract,
)
from hepsnake.config.loading import (
    load,
    load_model,
    load_tune,
    read_mapping,
    read_model,
    read_yaml,
    validate,
)
from hepsnake.config.resolved import (
    Resolved,
    read_config,
    resolve,
    workflow_config,
    write_resolved,
)
from hepsnake.config.samples import (
    expand_files,
    load_samples,
    parse_params,
    sample_by_name,
    samples_with_role,
)
from hepsnake.config.schema import MODEL_SCHEMA, SCHEMA, TUNE_SCHEMA, check_schema, schema_validator
from hepsnake.config.typed import build, digest, to_data

__all__ = [
    "MODEL_SCHEMA",
    "SCHEMA",
    "STAGES",
    "TUNE_SCHEMA",
    "Resolved",
    "build",
    "check_schema",
    "contract",
    "digest",
    "expand_files",
    "load",
    "load_model",
    "load_samples",
    "load_tune",
    "parse_params",
    "part_digest",
    "read_config",
    "read_mapping",
    "read_model",
    "read_yaml",
    "resolve",
    "sample_by_name",
    "samples_with_role",
    "schema_validator",
    "stage_digest",
    "to_data",
    "trial_contract",
    "validate",
    "workflow_config",
    "write_resolved",
]
