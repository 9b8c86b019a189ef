"""Test helpers shared by every test folder: the one fake clock and the bounded wait helpers."""
