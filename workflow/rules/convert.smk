rule convert:
    input:
        sample_files,
    output:
        h5=paths.CONVERTED,
        summary=paths.CONVERT_SUMMARY,
    params:
        config=CONFIG,
        digest=lambda w: digest("convert", sample=w.sample),
    log:
        paths.fill(paths.LOG, name="convert/{sample}"),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/convert.yaml"
    wildcard_constraints:
        # any name: the contract rejects an unknown sample (a joined name list slows big DAGs)
        sample="[^/]+",
    shell:
        "hepsnake convert --config {params.config:q} --sample {wildcards.sample:q}"
        " --output {output.h5:q} --summary {output.summary:q} > {log:q} 2>&1"
