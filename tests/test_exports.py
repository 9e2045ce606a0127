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


def test_no_public_name_is_shadowed_by_its_module():
    # A function named like the module it lives in (outcomes in outcomes.py) turns into the
    # module once anything imports the module: `from conduit_notebook import outcomes` then
    # hands out a module.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(conduit_notebook.__path__):
        if module.name != "__main__":
            importlib.import_module(f"conduit_notebook.{module.name}")
    for name in conduit_notebook.__all__:
        if name != "demo":
            assert not isinstance(getattr(conduit_notebook, name), types.ModuleType), name
