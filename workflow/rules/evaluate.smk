rule predict:
    input:
        ckpt="results/models/{model}/best.ckpt",
        test="results/prepared/test.h5",
        control="results/prepared/control_test.h5" if CONTROL_SAMPLES else [],
    output:
        "results/predictions/{model}.h5",
    params:
        # the flag and the path as two shell words, each quoted (none without a control split)
        control=lambda w, input: ["--control", input.control] if input.control else [],
    log:
        "results/logs/predict/{model}.log",
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/train.yaml"
    shell:
        "hepsnake predict --model {wildcards.model:q} --checkpoint {input.ckpt:q}"
        " --test {input.test:q} {params.control:q} --output {output:q} > {log:q} 2>&1"


# the plots rule evaluate writes: always, and those the config calls for
EVALUATE_PLOTS = ["roc", "outputs", "training"]
# S/√B: drawn, or a note saying why not (auto); not at all when switched off
EVALUATE_PLOTS += ["sb_scan"] if config["evaluate"].get("physical_weights") is not False else []
EVALUATE_PLOTS += ["roc_param", "param_efficiency"] if SIGNAL_PARAM_SAMPLES else []
EVALUATE_PLOTS += ["outputs_pt"] if config["evaluate"]["pt_bins"] else []
EVALUATE_PLOTS += ["control"] if CONTROL_SAMPLES else []
# efficiency and rejection per bin of pt (pt_bins) and of each evaluate.efficiency_variables
EFFICIENCY_PLOTS = [
    f"efficiency_{v}"
    for v in [*(["pt"] if config["evaluate"]["pt_bins"] else []), *config["evaluate"]["efficiency_variables"]]
]
EVALUATE_PLOTS += EFFICIENCY_PLOTS


rule evaluate:
    input:
        predictions="results/predictions/{model}.h5",
        training="results/models/{model}/metrics.json",
    output:
        metrics="results/metrics/{model}.json",
        **{
            name: report(
                f"results/plots/{{model}}/{name}.png",
                category="{model}",
                caption=f"../report/{'efficiency' if name in EFFICIENCY_PLOTS else name}.rst",
            )
            for name in EVALUATE_PLOTS
        },
        # every plot also as PDF, for notes
        **{f"{name}_pdf": f"results/plots/{{model}}/{name}.pdf" for name in EVALUATE_PLOTS},
    params:
        config=lambda w: stage_config(config, "evaluate", model=w.model),
        plots=subpath(output.roc, parent=True),
    log:
        "results/logs/evaluate/{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/evaluate.yaml"
    shell:
        "hepsnake evaluate --config {params.config:q} --model {wildcards.model:q}"
        " --predictions {input.predictions:q} --training {input.training:q}"
        " --output {output.metrics:q} --plots {params.plots:q} > {log:q} 2>&1"
