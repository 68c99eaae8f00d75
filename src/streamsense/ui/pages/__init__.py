"""The view models of the UI's pages: plain functions from the deployment's state to what a
template draws (dicts, lists and ``Chart``s). No web framework here: tests call them with
the fakes of ``streamsense.testing``."""
