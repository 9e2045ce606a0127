import types

import conduit_notebook


def test_all_is_complete_and_sorted():
    public = {
        name for name, value in vars(conduit_notebook).items()
        if not name.startswith("_") and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    assert conduit_notebook.__all__ == sorted(conduit_notebook.__all__)
    assert public <= set(conduit_notebook.__all__)
    assert "demo" in conduit_notebook.__all__
    for name in conduit_notebook.__all__:
        assert hasattr(conduit_notebook, name), name
