"""The build hook pyproject.toml cannot express: copy the served assets into the package.

Everything else about the package is in pyproject.toml. ``snippet/`` and ``demo_site/`` are sources at the top
level; what the server reads from them is copied into ``trailmark/assets/`` here (scripts/copy_assets.py).
"""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_assets(build_py):
    def run(self) -> None:
        copy_assets = runpy.run_path(str(HERE / "scripts" / "copy_assets.py"))["copy_assets"]
        # An editable install reads the package from server/; a wheel from the build directory.
        copy_assets(HERE / "server")
        super().run()


setup(cmdclass={"build_py": build_py_with_assets})
