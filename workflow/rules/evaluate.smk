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
        predictions="results/predictions/{model}.h5",
        training="results/models/{model}/metrics.json",
    output:
        metrics="results/metrics/{model}.json",
        roc=report(
            "results/plots/{model}/roc.png",
            category="{model}",
            caption="../report/roc.rst",
        ),
        outputs=report(
            "results/plots/{model}/outputs.png",
            category="{model}",
            caption="../report/outputs.rst",
        ),
        sb=report(
            "results/plots/{model}/sb_scan.png",
            category="{model}",
            caption="../report/sb_scan.rst",
        ),
        training=report(
            "results/plots/{model}/training.png",
            category="{model}",
            caption="../report/training.rst",
        ),
    params:
        config=stage_config(config, "evaluate"),
        plots=subpath(output.roc, parent=True),
    log:
        "results/logs/evaluate/{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake evaluate --config {params.config:q} --model {wildcards.model}"
        " --predictions {input.predictions} --training {input.training}"
        " --output {output.metrics} --plots {params.plots} > {log} 2>&1"
