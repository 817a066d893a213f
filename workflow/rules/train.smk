rule train:
    input:
        train="results/prepared/train.h5",
        val="results/prepared/val.h5",
        norm="results/prepared/norm_dict.yaml",
        class_dict="results/prepared/class_dict.yaml",
    output:
        best="results/models/{model}/best.ckpt",
        last="results/models/{model}/last.ckpt",
        csv="results/models/{model}/metrics.csv",
        json="results/models/{model}/metrics.json",
        config="results/models/{model}/config.yaml",
    params:
        config=lambda w: stage_config(config, "train", model=w.model),
        outdir=subpath(output.best, parent=True),
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
        "hepsnake train --config {params.config:q} --train {input.train} --val {input.val}"
        " --norm {input.norm} --class-dict {input.class_dict} --outdir {params.outdir}"
        " --threads {threads} > {log} 2>&1"
