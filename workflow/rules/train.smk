rule train:
    input:
        unpack(train_inputs),
    output:
        **paths.MODEL_OUTPUTS,
    params:
        config=CONFIG,
        digest=lambda w: digest("train", model=w.model),
    log:
        paths.fill(paths.LOG, name="train/{model}"),
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    wildcard_constraints:
        model="|".join(MODELS) or "NONE",
    shell:
        "hepsnake train --config {params.config:q} --model {wildcards.model:q}"
        " --threads {threads} > {log:q} 2>&1"
