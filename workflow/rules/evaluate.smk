rule predict:
    input:
        ckpt=paths.CHECKPOINT,
        test=paths.fill(paths.SPLIT, split="test"),
        control=paths.fill(paths.CONTROL_SPLIT, split="test") if CONTROL_SAMPLES else [],
    output:
        paths.PREDICTIONS,
    params:
        config=CONFIG,
        digest=lambda w: digest("predict", model=w.model),
    log:
        paths.fill(paths.LOG, name="predict/{model}"),
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake predict --config {params.config:q} --model {wildcards.model:q} > {log:q} 2>&1"


# the plots rule evaluate writes (paths.evaluate_plots), each paths.PLOT, and the folder of
# the model's task plots
rule evaluate:
    input:
        predictions=paths.PREDICTIONS,
        training=paths.TRAINING_METRICS,
    output:
        metrics=paths.METRICS,
        tasks=directory(paths.TASK_PLOT_DIR),
        **{
            name: report(
                paths.fill(paths.PLOT, model="{model}", name=name),
                category="{model}",
                caption=f"../report/{name}.rst",
            )
            for name in EVALUATE_PLOTS
        },
    params:
        config=CONFIG,
        digest=lambda w: digest("evaluate", model=w.model),
    log:
        paths.fill(paths.LOG, name="evaluate/{model}"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake evaluate --config {params.config:q} --model {wildcards.model:q}"
        " --output {output.metrics:q} > {log:q} 2>&1"
