from xietong.core.masking import mask_name, mask_phone, mask_resident_id


def test_resident_id_keeps_four_and_four() -> None:
    assert mask_resident_id("410102199001011234") == "4101**********1234"
    assert mask_resident_id("41010219900101123X") == "4101**********123X"


def test_phone_keeps_three_and_four() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138-1234-5678") == "138****5678"


def test_short_or_empty_values_are_fully_hidden() -> None:
    assert mask_resident_id("1234") == "****"
    assert mask_phone("12345") == "*****"
    assert mask_resident_id(None) == ""
    assert mask_name("张三丰") == "张**"
