"""Several devices and hosts: Keras 3's distribution API on `jax.sharding`.

```python
import funkeras as fk
fk.distribution.set_distribution(fk.distribution.DataParallel())  # every device
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, batch_size=256)                                   # unchanged
```

See `docs/distribution.md` for model parallelism with a `LayoutMap` and the
multi-process recipe.
"""

from funkeras.distribution.distributions import (
    DataParallel,
    Distribution,
    ModelParallel,
    distribution,
    initialize,
    set_distribution,
)
from funkeras.distribution.mesh import DeviceMesh, LayoutMap, list_devices

__all__ = [
    "list_devices",
    "DeviceMesh",
    "LayoutMap",
    "Distribution",
    "DataParallel",
    "ModelParallel",
    "set_distribution",
    "distribution",
    "initialize",
]
