"""Load tests and the system they load: simulator, reference service, stack."""
