from setuptools import find_packages, setup

setup(
    name="datadiet",
    version="0.1.0",
    description="Finding the training examples that matter: data-diet scores, pruning, "
    "gradient-matching coresets and adaptive sampling in JAX/Flax.",
    python_requires=">=3.10",
    packages=find_packages(include=["datadiet", "datadiet.*"]),
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.10",
        "optax>=0.2.3",
        "orbax-checkpoint>=0.6",
        "ml-collections>=0.1.1",
        "absl-py",
        "numpy",
        "scipy",
        "scikit-learn",
        "matplotlib",
        "tqdm",
        "tensorboardX",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets imports it without declaring it
        "pillow",
        "pyarrow",  # python -m datadiet.scores.export: Parquet tables of score sets
        "grain",  # data.pipeline = "host": the host input pipeline (datadiet/data/pipeline.py)
    ],
    extras_require={
        # tfds.load / building datasets need TensorFlow; data_source over array_record does not.
        "tfds": ["tensorflow-cpu"],
        # psycopg2: PostgreSQL storage for many tuning workers (URL postgresql+psycopg2://...)
        "hpo": ["optuna>=4.0", "psycopg2-binary"],
        # benchmarks/pergrad.py's PyTorch peers; install the CPU build first (here:
        # pip install torch==2.13.0, a local wheel), or pip pulls a CUDA build of several GB
        "bench": ["torch", "opacus"],
        # selenium: the report's browser test (Debian chromium + chromium-driver, see .ci/run)
        "dev": ["pytest", "pytest-xdist", "chex", "ruff", "optuna>=4.0", "psycopg2-binary", "selenium"],
    },
)
