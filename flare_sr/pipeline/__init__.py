"""The library layer above models: inference building (inference.py), the three-stage training run
(stages.py) and stage III's data (stage3_data.py). Entry scripts call it through flare_sr/cli.py."""
