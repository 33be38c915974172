"""Redis's command descriptions (src/commands/*.json of a Redis source tree), for the
generators of src/commands/keyspecs.rs and docs.rs."""
import glob
import json
import os


def load(directory):
    """Every command's description by its full name (`config|get`), in file order."""
    commands = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            doc = json.load(f)
        for name, cmd in doc.items():
            full = name.lower()
            if "container" in cmd:
                full = cmd["container"].lower() + "|" + full
            commands[full] = cmd
    return commands
