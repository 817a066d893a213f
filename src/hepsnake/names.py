"""Column and field names shared by every stage, in the FTAG tools' conventions.

Prediction columns follow puma and atlas-ftag-tools (``Label.px``): the class name without a
trailing ``jets``, so the FTAG classes ``bjets``/``cjets``/``ujets``/``taujets`` give
``{model}_pb``/``_pc``/``_pu``/``_ptau`` and every other class (``qcd``, ``sig``, ``b``,
``light``) gives ``{model}_p{class}``. A short name is not translated: ``light`` stays
``_plight`` (name the class ``ujets`` for puma's ``_pu``).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hepsnake.config.contracts import Inputs

LABEL = "flavour_label"  # the int class-index field of jets (Salt's and UPP's name)


def prob_suffix(class_name: str) -> str:
    """``p`` + ``class_name`` less a trailing ``jets``: ``bjets`` -> ``pb``, ``qcd`` -> ``pqcd``."""
    stem = class_name.removesuffix("jets")
    return f"p{stem or class_name}"


def prob_column(model: str, class_name: str, tag: str = "") -> str:
    """The column of ``model``'s probability for ``class_name``: ``{model}{tag}_p{class}``,
    ``tag`` a parameter point such as ``_mS16`` (see :func:`point_tag`)."""
    return f"{model}{tag}_{prob_suffix(class_name)}"


def point_tag(parameter: str, value: float) -> str:
    """``_{parameter}{value:g}``: the infix of the columns evaluated at one parameter point."""
    return f"_{parameter}{value:g}"


def transformed_field(variable: str, transform: str | dict) -> str:
    """The prepared field holding ``transform`` of ``variable`` (``inputs.transforms``):
    ``log_{variable}`` for ``log1p`` (``pt`` -> ``log_pt``), ``clipped_{variable}`` for
    ``{clip: [lo, hi]}``."""
    return f"log_{variable}" if transform == "log1p" else f"clipped_{variable}"


def input_fields(inputs: "Inputs") -> dict[str, list[str]]:
    """Per input collection, the prepared fields a model reads (and the norm dict lists):
    each configured variable, or its :func:`transformed_field` where it has a transform."""
    transforms = inputs.transforms
    return {
        coll: [
            transformed_field(v, transforms[coll][v]) if v in transforms.get(coll, {}) else v
            for v in variables
        ]
        for coll, variables in inputs.variables.items()
    }


def task_field(model: str, task: str, what: str) -> str:
    """A prediction field of a task other than the jet classification: ``{model}_{task}_{what}``
    (``what`` e.g. ``pprompt`` for a class probability, ``vertex``, or empty for a value)."""
    return f"{model}_{task}_{what}" if what else f"{model}_{task}"


def valid_field() -> str:
    """The per-constituent padding flag in every constituent dataset (True = real)."""
    return "valid"
