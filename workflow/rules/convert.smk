rule convert:
    input:
        sample_files,
    output:
        h5="results/h5/{sample}.h5",
        summary="results/h5/{sample}.summary.json",
    params:
        config=lambda w: stage_config(config, "convert", sample=w.sample),
    log:
        "results/logs/convert/{sample}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        # any name: stage_config rejects an unknown sample (a joined name list slows big DAGs)
        sample="[^/]+",
    shell:
        "hepsnake convert --config {params.config:q} --sample {wildcards.sample:q}"
        " --output {output.h5:q} --summary {output.summary:q} > {log:q} 2>&1"
