from testbed.fakeaws.engine.main import main

main()
