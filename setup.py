"""taskgen: large libEnsemble ensembles of Keras recurrent-network trainings."""

from setuptools import find_packages, setup

TENSORFLOW = ["tensorflow-cpu>=2.18", "tensorboard>=2.16"]
JAX = ["jax>=0.4.30"]
MPI = ["mpich", "mpi4py>=4"]
WANDB = ["wandb>=0.20"]  # simulator.tracking: wandb (reinit="create_new": several runs in one trainer)

setup(
    name="taskgen",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=[
        "generators*", "simulators*", "allocators*", "ensembles*", "hypers*", "theta_like_jobs*", "analysis*",
    ]),
    py_modules=["run_ensemble"],
    package_data={"ensembles": ["*.yaml"], "hypers": ["*.yaml"], "theta_like_jobs": ["*.yaml", "templates/*.j2"],
                  "analysis": ["templates/*.j2"]},
    install_requires=[
        "libensemble==1.6.1",
        "keras>=3.8",
        "numpy>=1.26",
        "pydantic>=2.7",
        "PyYAML>=6",
        "scikit-learn>=1.4",
        "pandas>=2.1",
        "scipy>=1.11",
        "statsmodels>=0.14",
        "matplotlib>=3.8",
        "jinja2>=3.1",
        "rich>=13",
        "psutil>=5.9",
    ],
    extras_require={
        "tf": TENSORFLOW,
        "jax": JAX,
        "mpi": MPI,
        "wandb": WANDB,
        "test": TENSORFLOW + JAX + MPI + WANDB + ["pytest>=8", "pytest-xdist>=3.2", "ruff>=0.6"],
    },
    entry_points={"console_scripts": ["taskgen=run_ensemble:main"]},
)
