"""The hostile-input suite, one section per class of issue 13 (and the README's Threat model).

Each class names the tests that keep it closed, wherever they live (they are not duplicated here);
``test_every_class_names_tests_that_exist`` fails if one is renamed or removed, so the index cannot
rot. Probes that no other file covered follow, under their class.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

CLASSES: dict[str, tuple[str, ...]] = {
    # Visibility: what one may not see gets the answer of what does not exist (L1, L3).
    "visibility": (
        "tests.e2e.test_missing_equals_hidden::test_announce_answers_a_hidden_channel_like_a_missing_one",
        "tests.e2e.test_missing_equals_hidden::test_info_and_export_answer_a_hidden_incident_like_a_missing_one",
        "tests.e2e.test_missing_equals_hidden::test_user_lookups_answer_another_teams_user_like_a_missing_one",
        "tests.e2e.test_history::test_each_user_sees_public_plus_their_private_incidents_newest_first",
        "tests.e2e.test_history::test_page_button_shows_what_the_clicker_may_see",
        "tests.e2e.test_stage_view::test_non_members_never_see_a_private_incidents_stages",
        "tests.e2e.test_security_quoting::test_a_hidden_playbook_does_not_block_or_reveal_a_title",
        "tests.e2e.test_dm_conversation::test_the_answer_links_the_ongoing_incidents_the_person_may_see",
        "tests.e2e.test_hostile_probes::test_announce_into_a_direct_message_of_others_is_answered_as_missing",
    ),
    # Removed members: access follows the channel at once (F1).
    "removed members": (
        "tests.e2e.test_membership::test_a_click_by_a_member_who_was_just_removed_changes_nothing",
        "tests.e2e.test_membership::test_an_end_dialog_opened_before_removal_cannot_end_the_incident",
        "tests.e2e.test_membership::test_someone_who_just_left_cannot_be_made_commander",
        "tests.e2e.test_membership::test_a_member_removed_while_the_bot_was_disconnected_is_refused_after_it_reconnects",
        "tests.e2e.test_step_commands::test_a_non_member_or_someone_who_left_cannot_run_a_step",
        "tests.e2e.test_stage_view::test_a_member_who_left_a_public_incident_cannot_use_an_old_view",
        "tests.e2e.test_history::test_member_who_left_no_longer_sees_a_private_incident",
        "tests.gateway.test_membership_directory::test_hostile_events_change_nothing_and_raise_nothing",
    ),
    # Cross-team: every command, click and dialog acts on its own team's channels only (F6).
    "cross-team": (
        "tests.gateway.test_team_binding::test_acme_token_cannot_act_on_a_globex_channel",
        "tests.gateway.test_team_binding::test_clicks_and_dialogs_claiming_another_team_are_refused",
        "tests.gateway.test_team_binding::test_the_binding_holds_after_the_bot_is_removed_from_the_incident_channel",
        "tests.e2e.test_history::test_other_team_incidents_never_appear",
        "tests.e2e.test_playbooks::test_other_teams_never_see_a_playbook",
    ),
    # Playbook membership: a playbook exists only for its members.
    "playbook membership": (
        "tests.e2e.test_playbooks::test_non_members_get_not_found_for_every_subcommand",
        "tests.e2e.test_incidents::test_non_member_of_playbook_cannot_start_with_it",
        "tests.e2e.test_incidents::test_start_dialog_lists_only_my_playbooks_sorted",
        "tests.e2e.test_security_quoting::test_two_shared_playbooks_with_one_title_are_told_apart_by_id",
        "tests.e2e.test_hostile_probes::test_a_captured_playbook_button_sent_as_a_non_member_does_nothing",
    ),
    # Announce: only where the person may post, through a step or typed (F2, L1).
    "announce": (
        "tests.e2e.test_incidents::test_announce_only_where_the_user_can_post",
        "tests.e2e.test_incidents::test_announce_into_a_private_channel_the_user_is_not_in",
        "tests.e2e.test_incidents::test_announce_into_a_private_channel_the_bot_is_not_in",
        "tests.e2e.test_step_commands::test_f2_announce_in_a_step_cannot_reach_someone_elses_private_incident",
    ),
    # --post: a post is quoted only for someone who can read it, and mentions nobody (L2).
    "--post": (
        "tests.e2e.test_incidents::test_start_from_a_post_the_user_cannot_read_does_not_quote_it",
        "tests.e2e.test_missing_equals_hidden::test_start_from_a_hidden_post_is_answered_like_a_missing_post",
        "tests.e2e.test_security_quoting::test_a_quoted_post_mentions_nobody_and_reads_the_same",
        "tests.e2e.test_security_quoting::test_a_post_quoted_from_the_reaction_button_mentions_nobody",
    ),
    # Injection: markdown, mentions, code spans, CSV (F4, F5, L2).
    "injection": (
        "tests.e2e.test_incidents::test_names_with_mentions_and_markdown_are_harmless",
        "tests.e2e.test_incidents::test_very_long_step_titles_keep_the_card_intact",
        "tests.e2e.test_security_quoting::test_backticks_in_a_step_command_do_not_break_out_of_the_ran_post",
        "tests.e2e.test_security_quoting::test_backticks_in_a_step_command_keep_the_card_and_the_playbook_view_intact",
        "tests.gateway.test_code_spans::test_no_content_gets_out_of_an_inline_span",
        "tests.gateway.test_code_spans::test_no_line_closes_a_code_block_early",
        "tests.gateway.test_code_spans::test_no_mention_in_a_quote_is_live",
        "tests.gateway.test_export_safety::test_a_message_that_would_be_a_formula_is_exported_as_text",
        "tests.e2e.test_security_quoting::test_export_is_spreadsheet_safe_unless_raw",
        "tests.faults.test_fuzz_steps::test_fuzzed_step_commands",
    ),
    # Step commands: never more rights than the runner's, never a step from a step (F2, F3).
    "step commands": (
        "tests.e2e.test_step_commands::test_own_subcommand_in_a_step_runs_as_the_clicking_user_and_is_attributed_to_them",
        "tests.e2e.test_step_commands::test_commands_that_would_act_with_the_bots_rights_are_handed_back",
        "tests.e2e.test_step_commands::test_f3_a_stored_step_that_runs_a_step_is_refused_once_and_never_loops",
        "tests.e2e.test_step_commands::test_f3_playbooks_with_a_step_that_runs_a_step_cannot_be_saved",
        "tests.faults.test_fuzz_steps::test_fuzzed_step_commands",
    ),
    # Forged HTTP: tokens, signatures, bodies, slow clients.
    "forged HTTP": (
        "tests.gateway.test_hostile::test_replayed_and_forged_callbacks_are_refused_and_change_nothing",
        "tests.gateway.test_hostile::test_malformed_bodies_are_refused_with_the_right_status",
        "tests.gateway.test_hostile::test_truncated_and_never_completed_bodies",
        "tests.gateway.test_hostile::test_slow_clients_and_floods_do_not_block_a_genuine_command",
        "tests.gateway.test_inbound::test_wrong_or_missing_token_is_401_and_nothing_runs",
        "tests.gateway.test_inbound::test_forged_or_tampered_dialog_rejected",
        "tests.gateway.test_signing::test_action_context_round_trip_and_tamper",
        "tests.gateway.test_signing::test_trigger_guard_rejects_replay_stale_and_other_user",
        "tests.e2e.test_incidents::test_tampered_dialog_choices_are_refused_without_change",
        "tests.faults.test_fuzz::test_fuzzed_commands_and_dialog_submissions",
        "tests.gateway.test_hostile_classes::test_the_deployment_publishes_no_port_for_the_bot",
    ),
    # Replays: by state and history, across restarts (F7, F8, the state-cycle gap).
    "replays": (
        "tests.e2e.test_state_bound_buttons::test_a_replayed_check_after_the_step_was_reopened_changes_nothing",
        "tests.e2e.test_state_bound_buttons::test_a_replayed_next_stage_after_the_stage_moved_on_changes_nothing",
        "tests.e2e.test_state_cycles::test_an_old_next_click_after_next_then_previous_changes_nothing",
        "tests.e2e.test_state_cycles::test_an_old_next_click_stays_refused_after_the_bot_restarts",
        "tests.e2e.test_state_cycles::test_an_end_dialog_opened_before_end_then_restart_ends_nothing",
        "tests.e2e.test_state_cycles::test_an_old_end_click_after_end_then_restart_opens_no_dialog",
        "tests.e2e.test_state_cycles::test_a_captured_run_click_runs_nothing_again",
        "tests.domain.test_freshness_cycles::test_next_then_previous_gives_a_new_stage_mark_in_one_millisecond",
        "tests.e2e.test_replay_restart::test_a_captured_end_submission_is_refused_after_a_restart",
        "tests.e2e.test_replay_restart::test_a_captured_stage_next_command_is_refused_after_a_restart",
        "tests.e2e.test_history::test_only_the_owner_turns_the_pages_of_a_list",
    ),
    # YAML abuse: sizes per way in, bombs, parsing off the loop (F9).
    "YAML abuse": (
        "tests.e2e.test_yaml_limits::test_the_import_dialog_refuses_more_than_its_3000_characters",
        "tests.e2e.test_yaml_limits::test_a_file_over_256_kb_is_refused_without_reading_it",
        "tests.e2e.test_yaml_limits::test_the_bot_answers_while_a_large_file_is_parsed",
        "tests.gateway.test_yaml_limits::test_an_alias_bomb_is_refused_before_anything_expands",
        "tests.gateway.test_yaml_limits::test_a_slow_parse_is_abandoned_with_a_clear_message",
        "tests.faults.test_fuzz_yaml::test_fuzzed_yaml_sizes_and_shapes",
    ),
    # Races: two people at once, copies at once, a restart in the middle (F10).
    "races": (
        "tests.e2e.test_start_race::test_same_name_starts_at_once_each_get_their_own_private_channel",
        "tests.e2e.test_incidents::test_double_click_gives_one_result",
        "tests.e2e.test_incidents::test_two_users_clicking_at_once_both_count",
        "tests.e2e.test_state_bound_buttons::test_different_buttons_of_one_card_clicked_at_once_all_succeed",
        "tests.e2e.test_replay_restart::test_two_copies_of_one_command_at_once_run_once",
        "tests.e2e.test_replay_restart::test_copies_of_one_dialog_submission_sent_at_once_run_once",
        "tests.e2e.test_state_cycles::test_copies_of_one_run_click_sent_at_once_run_once",
        "tests.e2e.test_start_recovery::test_sigkill_during_start_is_repaired_on_restart",
    ),
}


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_every_class_names_tests_that_exist(kind):
    missing = []
    for reference in CLASSES[kind]:
        module, name = reference.split("::")
        if not callable(getattr(importlib.import_module(module), name, None)):
            missing.append(reference)
    assert missing == [], f"{kind}: no such test {missing}"


# -- forged HTTP: the deployment keeps the bot's port to Mattermost (README, Threat model) ---------------

def test_the_deployment_publishes_no_port_for_the_bot():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    bots = [name for name, service in services.items() if "CC_BOT_TOKEN" in str(service.get("environment", ""))]
    assert bots, "no bot service in the compose file"
    for name in bots:
        assert not services[name].get("ports"), f"{name} publishes its port beyond the compose network"
