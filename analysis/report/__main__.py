"""python -m analysis.report DIR [--k=10] [--data_path=PATH] -> DIR/report/index.html"""
import argparse

from analysis.report.build import build


def main(argv=None):
    parser = argparse.ArgumentParser(description="HTML report of a scores job, a run, an "
                                     "experiment or a tuning study directory")
    parser.add_argument("directory")
    parser.add_argument("--k", type=int, default=10, help="examples per class in each gallery")
    parser.add_argument("--data_path", default=None,
                        help="replaces the saved data.path (images are loaded from it)")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k={args.k} must be >= 1")
    print(build(args.directory, args.k, args.data_path))


if __name__ == "__main__":
    main()
