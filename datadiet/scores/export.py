"""One table of a score set, for use outside datadiet:

    python -m datadiet.scores.export SCORES_DIR --out=FILE.parquet   # or FILE.csv

Columns: `id`, `label` (the label scored with), `corrupted` (only with label noise), then per
score `<name>` (mean over seeds) and `<name>_seed<s>` (each seed's values), then saved
embeddings (`scores.embeddings`) one column per dimension, `<name>_<j>`. The provenance
(dataset, model, n_train, seeds, epochs, config, label_noise) is JSON: in Parquet, the schema
metadata under the key `datadiet`; in CSV, a sidecar file FILE.csv.json (a CSV has no metadata,
and comment lines would trip most readers).
"""
import argparse
import json

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from datadiet.scores.scoreset import load

METADATA_KEY = b"datadiet"


def to_table(score_set):
    columns = {"id": score_set.ids, "label": score_set.labels}
    if score_set.corrupted is not None:
        columns["corrupted"] = score_set.corrupted
    for name in score_set.names:
        columns[name] = score_set.scores[name]
        for seed, values in sorted(score_set.per_seed[name].items()):
            columns[f"{name}_seed{seed}"] = values
    for name, rows in sorted(score_set.embeddings.items()):
        columns.update({f"{name}_{j}": rows[:, j] for j in range(rows.shape[1])})
    table = pa.table(columns)
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(score_set.provenance)})


def export(scores_dir, out, data_path=None):
    table = to_table(load(scores_dir, data_path=data_path))
    if out.endswith(".parquet"):
        pyarrow.parquet.write_table(table, out)
    elif out.endswith(".csv"):
        pyarrow.csv.write_csv(table.replace_schema_metadata(None), out)
        with open(out + ".json", "w") as f:
            f.write(table.schema.metadata[METADATA_KEY].decode())
    else:
        raise ValueError(f"--out={out!r} must end in .parquet or .csv")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores_dir", help="a scores job workdir or its scores/ folder")
    parser.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    parser.add_argument("--data_path", default=None,
                        help="replaces the saved data.path if labels must be rebuilt")
    args = parser.parse_args(argv)
    if not args.out.endswith((".parquet", ".csv")):  # before loading anything
        parser.error(f"--out={args.out!r} must end in .parquet or .csv")
    table = export(args.scores_dir, args.out, args.data_path)
    print(f"{args.out}: {table.num_rows} rows, {table.num_columns} columns")


if __name__ == "__main__":
    main()
