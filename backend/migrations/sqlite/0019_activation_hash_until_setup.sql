-- A token keeps its activation password's v1 hash only while its setup is ahead (issued, link
-- opened): setup and voiding now clear it. This clears it where they did not yet, so a thief of
-- the database cannot guess, offline, the 4 to 8 digits a customer may type again at the next
-- issuance.
UPDATE tokens SET activation_password_hash = ''
WHERE state NOT IN ('issued', 'link_opened') AND activation_password_hash <> '';
