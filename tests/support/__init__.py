"""Test helpers shared by every test folder: the one fake clock, the bounded wait helpers and the
healthy emulated cluster of the integration tests."""
