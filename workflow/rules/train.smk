rule train:
    input:
        unpack(train_inputs),
    output:
        best="results/models/{model}/best.ckpt",
        last="results/models/{model}/last.ckpt",
        csv="results/models/{model}/metrics.csv",
        json="results/models/{model}/metrics.json",
        config="results/models/{model}/config.yaml",
    params:
        config=lambda w: stage_config(config, "train", model=w.model),
        outdir=subpath(output.best, parent=True),
        # flags and paths as separate shell words, each quoted (none for non-adversarial models)
        control=lambda w, input: (
            ["--control-train", input.control_train, "--control-val", input.control_val]
            if "control_train" in input.keys()
            else []
        ),
    log:
        "results/logs/train/{model}.log",
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        model="|".join(MODELS) or "NONE",
    shell:
        "hepsnake train --config {params.config:q} --train {input.train:q} --val {input.val:q}"
        " --norm {input.norm:q} --class-dict {input.class_dict:q} --outdir {params.outdir:q}"
        " --threads {threads} {params.control:q} > {log:q} 2>&1"
