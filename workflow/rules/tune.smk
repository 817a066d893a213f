# Hyperparameter studies (config `tune:`): trial jobs sharing one Optuna study, then the best
# trial as a model config (`models: [tune.<study>]` trains it like any other model).
rule tune_trial:
    input:
        unpack(tune_trial_inputs),
    output:
        "results/tune/{study}/trials/{trial}.json",
    params:
        config=lambda w: stage_config(config, "tune", study=w.study),
        outdir=lambda w: f"results/tune/{w.study}/trials/{w.trial}",
        control=lambda w, input: (
            ["--control-train", input.control_train, "--control-val", input.control_val]
            if "control_train" in input.keys()
            else []
        ),
    log:
        "results/logs/tune/{study}/{trial}.log",
    # as rule train's (the batch profiles give both the same GPU request)
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        study="|".join(TUNE) or "NONE",
        trial=r"\d+",
    shell:
        "hepsnake tune --config {params.config:q} --job {wildcards.trial:q}"
        " --train {input.train:q} --val {input.val:q} --norm {input.norm:q}"
        " --class-dict {input.class_dict:q} {params.control:q} --outdir {params.outdir:q}"
        " --output {output:q} --threads {threads} > {log:q} 2>&1"


rule tune_best:
    input:
        lambda w: expand(
            "results/tune/{study}/trials/{trial}.json",
            study=w.study,
            trial=range(TUNE[w.study]["n_trials"]),
        ),
    output:
        best="results/tune/{study}/best.yaml",
        summary="results/tune/{study}/study.json",
        history="results/tune/{study}/history.png",
        importances="results/tune/{study}/importances.png",
        history_pdf="results/tune/{study}/history.pdf",
        importances_pdf="results/tune/{study}/importances.pdf",
    params:
        config=lambda w: stage_config(config, "tune_best", study=w.study),
    log:
        "results/logs/tune/{study}/best.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        study="|".join(TUNE) or "NONE",
    shell:
        "hepsnake study --config {params.config:q} --trials {input:q} --output {output.best:q}"
        " --summary {output.summary:q} --history {output.history:q}"
        " --importances {output.importances:q} > {log:q} 2>&1"
