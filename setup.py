"""Install flare_sr as a package (``pip install -e .``) so that ``import flare_sr`` works from anywhere."""
from setuptools import find_packages, setup


def read_requirements():
    with open('requirements.txt') as handle:
        return [line.split('#')[0].strip() for line in handle if line.split('#')[0].strip()]


def read_version():
    scope = {}
    with open('flare_sr/version.py') as handle:
        exec(handle.read(), scope)
    return scope['__version__']


setup(
    name='flare_sr',
    version=read_version(),
    description='Lens-flare and light-scattering removal as a BasicSR plugin (Pix2Pix + HINet cascade)',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('flare_sr', 'flare_sr.*')),  # tests/ stays in the repository
    python_requires='>=3.9',
    install_requires=read_requirements(),
    # ONNX export (scripts/export_onnx.py) and infer.py --backend onnxruntime: pip install -e ".[onnx]"
    extras_require={'onnx': ['onnx>=1.16', 'onnxruntime>=1.18']},
    # the same command lines as python flare_sr/train.py, test.py, infer.py and train_pipeline.py
    entry_points={'console_scripts': [
        'flare-sr-train = flare_sr.cli:train_main',
        'flare-sr-test = flare_sr.cli:test_main',
        'flare-sr-infer = flare_sr.cli:infer_main',
        'flare-sr-pipeline = flare_sr.cli:pipeline_main',
    ]},
    zip_safe=False,
)
