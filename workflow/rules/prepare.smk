rule prepare_splits:
    input:
        expand("results/h5/{sample}.h5", sample=MAIN_SAMPLES),
    output:
        train="results/prepared/train.h5",
        val="results/prepared/val.h5",
        test="results/prepared/test.h5",
        debug=expand("results/prepared/debug_{split}.h5", split=SPLITS),
        summary="results/prepared/split_summary.json",
        plot=report(
            "results/plots/prepare/reweighting.png",
            category="Dataset",
            caption="../report/reweighting.rst",
        ),
        plot_pdf="results/plots/prepare/reweighting.pdf",
    params:
        config=stage_config(config, "split"),
    log:
        "results/logs/prepare/splits.log",
    threads: 1
    resources:
        mem_mb=8000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake split --config {params.config:q} --inputs {input:q}"
        " --outputs {output.train:q} {output.val:q} {output.test:q} --debug {output.debug:q}"
        " --summary {output.summary:q} --plot {output.plot:q} > {log:q} 2>&1"


rule prepare_control:
    input:
        expand("results/h5/{sample}.h5", sample=CONTROL_SAMPLES),
    output:
        train="results/prepared/control_train.h5",
        val="results/prepared/control_val.h5",
        test="results/prepared/control_test.h5",
        summary="results/prepared/control_summary.json",
    params:
        config=stage_config(config, "split"),
    log:
        "results/logs/prepare/control.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake split --control --config {params.config:q} --inputs {input:q}"
        " --outputs {output.train:q} {output.val:q} {output.test:q} --summary {output.summary:q}"
        " > {log:q} 2>&1"


rule prepare_norm:
    input:
        train="results/prepared/train.h5",
    output:
        norm="results/prepared/norm_dict.yaml",
        class_dict="results/prepared/class_dict.yaml",
        classes="results/prepared/classes.yaml",
    params:
        config=stage_config(config, "norm"),
    log:
        "results/logs/prepare/norm.log",
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/prepare.yaml"
    shell:
        "hepsnake norm --config {params.config:q} --train {input.train:q}"
        " --norm {output.norm:q} --class-dict {output.class_dict:q}"
        " --classes {output.classes:q} > {log:q} 2>&1"
