from services.strategy.main import main

main()
