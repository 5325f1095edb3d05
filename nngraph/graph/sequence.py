"""Sequence layers (issue #6): rnn, lstm, gru, attention, built from primitive operators."""
