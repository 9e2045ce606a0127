import conduit_notebook


def test_all_is_complete_and_sorted():
    public = {
        name for name in dir(conduit_notebook)
        if not name.startswith("_") and name not in {"annotations"}
        and getattr(getattr(conduit_notebook, name), "__module__", "conduit_notebook").startswith("conduit_notebook")
    }
    modules = {"cli", "client", "errors", "pacing", "report"}
    assert sorted(conduit_notebook.__all__) == conduit_notebook.__all__
    assert public - modules - {"demo"} <= set(conduit_notebook.__all__)
    for name in conduit_notebook.__all__:
        assert hasattr(conduit_notebook, name), name
