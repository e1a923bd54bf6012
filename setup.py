"""Packaging for tfsal.

Three source folders become one installed package:
  tfsal/         -> tfsal
  cli/           -> tfsal.cli           (the click application)
  saved_models/  -> tfsal.saved_models  (shipped model files, package data)
The same mapping serves `pip install .` and `pip install -e .`.
"""
import pathlib
import re

from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "tfsal" / "_version.py").read_text(), re.M
).group(1)

# the packages under tfsal/, one per stage of the pipeline (docs/architecture.md)
STAGES = ("data", "models", "train", "explain", "outputs", "evaluation", "recipes", "serving", "batch", "util")

setup(
    name="tfsal",
    version=VERSION,
    description=(
        "Counterfactual saliency maps for medical image classifiers: the smallest region "
        "whose inpainting by healthy tissue changes the classifier's decision."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    author="The tfsal authors",
    keywords="explainable AI, saliency, counterfactual, inpainting, mammography, TensorFlow, Keras",
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Healthcare Industry",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",  # what CI runs
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Typing :: Typed",
    ],
    python_requires=">=3.10",
    packages=["tfsal", *(f"tfsal.{name}" for name in STAGES), "tfsal.examples", "tfsal.cli", "tfsal.saved_models"],
    package_dir={
        "tfsal": "tfsal",
        "tfsal.cli": "cli",
        "tfsal.saved_models": "saved_models",
    },
    package_data={"tfsal": ["py.typed"], "tfsal.saved_models": ["*.keras", "*.md", "*.png", "*.json"],
                  "tfsal.examples": ["*.png", "*.md"]},
    install_requires=[
        "tensorflow==2.21.*",
        "tensorflow-serving-api==2.21.*",
        "grpcio-health-checking>=1.62",  # tfsal serve: the standard grpc.health.v1 service
        "protobuf>=6.31.1,<7",  # the range TensorFlow, its serving API and Apache Beam all accept
        "keras>=3.15.1",  # the published safe-mode and deserialisation advisories are fixed from 3.15.1 on
        "pydicom>=3.0.2,<4",  # 3.0.0-3.0.1: a published FileSet advisory
        # DICOM decoders, all under licences that fit tfsal's Apache-2.0: JPEG 2000 (MIT), JPEG-LS
        # (MIT), JPEG baseline and lossless (GDCM, BSD / Apache-2.0); 12-bit JPEG Extended needs the
        # GPL-3.0 pylibjpeg-libjpeg, an opt-in extra (docs/security.md)
        "pylibjpeg>=2",
        "pylibjpeg-openjpeg>=2",
        "pyjpegls>=1.2",
        "python-gdcm>=3.0.24",
        "numpy>=1.26",
        "scipy>=1.11",
        "opencv-python-headless>=4.8",
        "click>=8.1",
        "matplotlib>=3.8",
        "tqdm>=4.66",
    ],
    extras_require={
        # tfsal explain-batch: the Apache Beam pipeline (issue 9)
        "beam": ["apache-beam>=2.70"],
        # --dicom-out / --dicom-send: DICOM Segmentation and Secondary Capture, C-STORE (issue 9)
        "dicom": ["highdicom>=0.28", "pynetdicom>=3"],
        # 12-bit JPEG Extended DICOM (and a second JPEG decoder): GPL-3.0, so never installed by default
        "gpl-jpeg": ["pylibjpeg-libjpeg>=2"],
        # cryptography: the serving tests make their own CA and certificates
        "test": ["pytest>=8", "pytest-xdist>=3.5",
                 "pyyaml>=6", "apache-beam>=2.70", "highdicom>=0.28", "pynetdicom>=3", "cryptography>=42"],
    },
    entry_points={"console_scripts": ["tfsal=tfsal.cli.main:main"]},
)
