"""Backends: where a trained network runs after training (only the rate engine trains).

    BACKENDS               name → backend class (`base.Backend`)
    deploy(backend, run_dir, options)   load → prepare → run → report (`base.deploy`)

| name     | runs the folded network as                                   | needs   |
|----------|--------------------------------------------------------------|---------|
| lava     | Lava Dense/Conv + SigmaDelta processes on Lava's runtime (fixed_pt), vs the emulator | lava-nc |
| emulator | neurodecorr's bit-exact numpy emulator of the same processes | —       |
| brian2   | integrate-and-fire neurons in Brian2 (rate coding; dense networks only) | brian2  |
"""

from neurodecorr.backends.base import Backend, BackendRun, deploy, require
from neurodecorr.backends.brian2_deploy import Brian2Backend
from neurodecorr.backends.emulator import EmulatorBackend
from neurodecorr.backends.lava_deploy import LavaBackend
from neurodecorr.backends.prepare import Deployment, DeployOptions

BACKENDS: dict[str, type] = {b.name: b for b in (LavaBackend, EmulatorBackend, Brian2Backend)}

__all__ = ["BACKENDS", "Backend", "BackendRun", "DeployOptions", "Deployment", "deploy", "require"]
