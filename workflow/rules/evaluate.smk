rule predict:
    input:
        ckpt="results/models/{model}/best.ckpt",
        test="results/prepared/test.h5",
        control="results/prepared/control_test.h5" if CONTROL_SAMPLES else [],
    output:
        "results/predictions/{model}.h5",
    params:
        control=lambda w, input: f"--control {input.control}" if input.control else "",
    log:
        "results/logs/predict/{model}.log",
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake predict --model {wildcards.model} --checkpoint {input.ckpt} --test {input.test}"
        " {params.control} --output {output} > {log} 2>&1"


rule evaluate:
    input:
        "results/predictions/{model}.h5",
    output:
        "results/metrics/{model}.json",
    params:
        config=stage_config(config, "evaluate"),
    log:
        "results/logs/evaluate/{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake evaluate --config {params.config:q} --model {wildcards.model}"
        " --predictions {input} --output {output} > {log} 2>&1"
